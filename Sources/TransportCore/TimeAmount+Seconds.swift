public import NIOCore

extension TimeAmount {
    /// The longest wait a timer is set for (about 31 years): a wait computed from rates and
    /// sizes (a throttle's queue) can grow past what nanoseconds in 64 bits hold, and NIO traps there.
    static let longestWait = TimeAmount.nanoseconds(1 << 60)

    /// `seconds` as a timer's wait: negative and NaN as none, past ``longestWait`` as that.
    public static func seconds(clamping seconds: Double) -> TimeAmount {
        guard seconds > 0 else { return .zero }
        let nanoseconds = seconds * 1e9
        return nanoseconds < Double(longestWait.nanoseconds) ? .nanoseconds(Int64(nanoseconds)) : longestWait
    }
}
