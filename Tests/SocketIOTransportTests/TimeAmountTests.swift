import NIOCore
import SocketIOTransport
import Testing

@Suite("Timer waits")
struct TimeAmountTests {
    @Test("A wait in seconds becomes a timer's wait: none when negative or NaN, clamped when past what 64-bit nanoseconds hold")
    func clamped() {
        #expect(TimeAmount.seconds(clamping: 1.5) == .milliseconds(1500))
        #expect(TimeAmount.seconds(clamping: -1) == .zero && TimeAmount.seconds(clamping: .nan) == .zero)
        let longest = TimeAmount.seconds(clamping: .infinity)
        #expect(longest.nanoseconds > 0 && TimeAmount.seconds(clamping: 1e300) == longest && TimeAmount.seconds(clamping: 6.7e10) == longest)
        #expect(NIODeadline.now() + longest > .now(), "a deadline that far still adds up")
    }
}
