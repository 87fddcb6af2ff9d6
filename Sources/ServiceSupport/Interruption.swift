import UnixSignals

/// A command that was asked to stop (SIGINT, SIGTERM) and wound down: what it threw on the way out.
public struct Interrupted: Error, CustomStringConvertible {
    public let signal: UnixSignal
    public let underlying: any Error

    /// The shell's convention for a process ended by a signal: 128 + its number.
    public var exitCode: Int32 { 128 + signal.rawValue }
    public var description: String { "interrupted by \(signal): \(underlying)" }
}

/// Runs `body` and, when the process gets SIGINT or SIGTERM (an operator's Ctrl-C, a job runner's
/// timeout), cancels it and waits for it to finish: a command that has changed things (a reindex's
/// half-loaded index) undoes them on the way out instead of being killed half-way. Returns what
/// `body` returned; throws what it threw, as `Interrupted` after a signal.
public func cancellingOnInterrupt<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    // Trapped before `body` starts, so no signal meanwhile takes the default action (exit at once).
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    let (signal, outcome) = await withTaskGroup(of: InterruptibleEvent<T>.self) { group in
        group.addTask {
            do { return .finished(.success(try await body())) } catch { return .finished(.failure(error)) }
        }
        group.addTask {
            for await signal in signals { return .signal(signal) }
            return .stoppedWatching
        }
        var signal: UnixSignal?, outcome: Result<T, any Error> = .failure(CancellationError())
        for await event in group {
            switch event {
            case .signal(let received):
                signal = signal ?? received
                group.cancelAll()  // cancels `body`; the loop waits for it to wind down
            case .finished(let result):
                outcome = result
                group.cancelAll()  // stops watching for signals
            case .stoppedWatching:
                break
            }
        }
        return (signal, outcome)
    }
    switch outcome {
    case .success(let value): return value
    case .failure(let error): throw signal.map { Interrupted(signal: $0, underlying: error) } ?? error
    }
}

private enum InterruptibleEvent<T: Sendable>: Sendable {
    case finished(Result<T, any Error>)
    case signal(UnixSignal)
    case stoppedWatching
}
