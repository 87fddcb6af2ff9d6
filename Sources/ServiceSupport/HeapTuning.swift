import CAllocator
import Foundation
import ServiceLifecycle

/// Keeps a long-running service's resident memory at its live set.
///
/// glibc gives each thread that allocates an arena of its own (up to 8 per core) and returns
/// freed memory to the kernel only from the top of an arena. A service whose allocations hop
/// between libpq, libcurl, NIO and cooperative-pool threads fragments many arenas, and its RSS
/// creeps up while its live data does not: in a 30-minute soak an indexer went from 80 MB to
/// 108 MB. Two arenas and a periodic `malloc_trim` keep it flat, at the cost of a little lock
/// contention that 2 cores do not notice. There is no Swift package for this; it is two glibc
/// calls (`CAllocator`).
public enum HeapTuning {
    /// At most this many malloc arenas, unless `MALLOC_ARENA_MAX` says otherwise.
    public static let arenas: Int32 = 2
    /// How often free pages are handed back.
    public static let trimInterval: Duration = .seconds(10)

    /// Whether this build tunes glibc's allocator (false elsewhere: the calls below do nothing).
    public static var isAvailable: Bool { callocator_is_tunable() == 1 }

    /// Call first in `main`, before threads start allocating: glibc fixes the arena limit when
    /// the first thread arena is created. True when the limit was set.
    @discardableResult
    public static func limitArenas(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard environment["MALLOC_ARENA_MAX"] == nil else { return false }
        return callocator_limit_arenas(arenas) == 1
    }

    /// Hands free pages back to the kernel now.
    public static func trim() { _ = callocator_trim() }
}

/// Trims the heap every `HeapTuning.trimInterval` until shutdown; `runUntilSignalled` runs it
/// beside every service.
public struct HeapTrimmer: Service {
    public init() {}

    public func run() async throws {
        // Cancelled, not waited for, at shutdown: a sleeping trimmer must not delay the stop.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: HeapTuning.trimInterval)
                HeapTuning.trim()
            }
        }
    }
}
