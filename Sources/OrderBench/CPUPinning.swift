import Foundation

/// Pins processes to cores for the isolation benchmark ("two hosts" on one machine), with
/// `taskset` from util-linux; every thread, and for PostgreSQL every backend that exists
/// (later ones inherit the postmaster's affinity).
enum CPUPinning {
    /// Cores this machine has.
    static var cores: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Pins PostgreSQL (`ORDER_BENCH_PG_PID`, the postmaster) and this process; `nil` cores: all again.
    static func pin(postgresTo postgres: Int?, selfTo own: Int?) async throws {
        guard cores >= 2 else { throw BenchError("the isolation benchmark needs at least 2 cores (this machine has \(cores))") }
        guard let postmaster = ProcessInfo.processInfo.environment["ORDER_BENCH_PG_PID"].flatMap(Int32.init) else {
            throw BenchError("ORDER_BENCH_PG_PID is not set (scripts/bench sets it)")
        }
        let all = "0-\(cores - 1)"
        let postgresCPUs = postgres.map(String.init) ?? all, ownCPUs = own.map(String.init) ?? all
        let command = """
            taskset -a -p -c \(postgresCPUs) \(postmaster) >/dev/null && \
            for pid in $(pgrep -P \(postmaster)); do taskset -a -p -c \(postgresCPUs) "$pid" >/dev/null; done && \
            taskset -a -p -c \(ownCPUs) \(getpid()) >/dev/null
            """
        guard await SoakChaos.shell(command) == 0 else { throw BenchError("taskset failed (scripts/bench installs util-linux)") }
    }
}
