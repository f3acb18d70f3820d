import Testing

@testable import SocketIOProtocol

/// Query strings as browsers and the URLSearchParams of Node send them.
@Suite("Query strings")
struct QueryStringTests {
    @Test("Pairs in order, percent escapes and + decoded, bad escapes kept, empty pieces skipped")
    func pairs() {
        let pairs = QueryString.pairs("EIO=4&transport=polling&t=N8h%2Fd6w&bad=%zz%4&name=a+b%20c&flag&=v&&utf8=%C3%A9%e2%82%ac")
        #expect(pairs.map(\.0) == ["EIO", "transport", "t", "bad", "name", "flag", "", "utf8"])
        #expect(pairs.map(\.1) == ["4", "polling", "N8h/d6w", "%zz%4", "a b c", "", "v", "é€"])
        #expect(QueryString.pairs("").isEmpty)
        #expect(QueryString.pairs("token=eyJ.a-b_c.d")[0].1 == "eyJ.a-b_c.d")
    }
}
