import Foundation
import RequestParsing

/// Built by scripts/fuzz with `-sanitize=fuzzer,address -D FUZZING`: hands
/// control to libFuzzer's driver, which calls the target named by
/// `ORDER_FUZZ_TARGET`. Built normally, it replays files:
/// `order-fuzz TARGET FILE…` (a crash input, a corpus).
@main
struct OrderFuzz {
    static func main() throws {
        #if FUZZING
        _ = target(named: ProcessInfo.processInfo.environment["ORDER_FUZZ_TARGET"] ?? "")
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
        #else
        let arguments = CommandLine.arguments.dropFirst()
        let run = target(named: arguments.first ?? "")
        for path in arguments.dropFirst() { run(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) }
        #endif
    }

    static func target(named name: String) -> @Sendable ([UInt8]) -> Void {
        guard let target = FuzzTargets.all[name] else {
            FileHandle.standardError.write(Data("targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return target
    }
}

#if FUZZING
let fuzzTarget = OrderFuzz.target(named: ProcessInfo.processInfo.environment["ORDER_FUZZ_TARGET"] ?? "")

/// libFuzzer's entry for one input.
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTarget(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// libFuzzer's driver (compiler-rt), for programs that keep their own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif
