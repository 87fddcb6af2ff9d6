import ElasticsearchClient
import RetryPolicy

/// Admin commands run beside the live indexers, so a busy cluster (429, 5xx, a timeout, a dropped
/// connection) is a reason to wait and try again, not to fail. Only idempotent calls go through
/// here: each is retried with `Backoff.adminRead` for at most `patience`, then the failure stands.
func retryingWhileBusy<T>(for patience: Duration = .seconds(120), _ call: () async throws -> T) async throws -> T {
    try await Backoff.adminRead.retrying(for: patience, if: { ($0 as? ElasticsearchError)?.isTransient == true }, call)
}
