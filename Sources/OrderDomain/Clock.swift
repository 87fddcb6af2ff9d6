#if canImport(Glibc)
import Glibc
#endif

/// The system clock. The domain's rules never read it: application services
/// read it once per command and pass `now` in, so the rules stay pure and testable.
extension Timestamp {
    /// The current time, truncated to milliseconds.
    @Sendable public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(millisecondsSinceEpoch: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}
