import Testing
import TrafficCapture

/// Found by the capture-reader fuzz target: a record whose number is past Double's range
/// (`1e999`) was read as infinity, which no line can hold, so it changed when written back.
@Suite("Numbers a record cannot hold")
struct CaptureNumberRangeTests {
    @Test("A duration past Double's range is refused as the record's error, not read as infinity")
    func pastDoubleRange() throws {
        let line = #"{"seq":4,"ts":"2026-11-27T10:33:32.225499Z","kind":"jwt","conn":"c1","source":"auth.token","header":{},"claims":{},"verified":null,"expires_in_s":"#
        #expect(throws: CaptureReadError.self) { try CaptureRecord(jsonLine: line + "1e999}") }
        let kept = try CaptureRecord(jsonLine: line + "1e300}")
        #expect(try CaptureRecord(jsonLine: kept.jsonLine) == kept)
    }
}
