import Foundation
import Logging
import Security
import TokenSigning

/// Start-up checks of the executables: a configuration error is printed
/// (naming the variables, never their values) and the process exits 1.
public enum Startup {
    public static func require<T>(_ what: String, _ body: () async throws -> T) async -> T {
        do {
            return try await body()
        } catch {
            FileHandle.standardError.write(Data("error: \(what): \(error)\n".utf8))
            exit(1)
        }
    }

    /// The authentication mode; warns when it is disabled.
    public static func authMode(_ configuration: ServiceConfiguration, logger: Logger) async -> AuthConfiguration.Mode {
        let mode = await require("authentication") { try await configuration.auth.mode() }
        if case .disabled = mode { logger.warning("AUTH_DISABLED=true: every request acts as staff without a token (development only)") }
        return mode
    }

    public static func tokenSigner() async -> TokenSigner {
        await require("SIGNING_KEY") { try TokenSigner(environment: ProcessInfoEnvironment.all) }
    }
}
