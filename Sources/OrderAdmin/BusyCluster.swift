import ElasticsearchClient
import ReadModel
import RetryPolicy

/// Admin commands run beside the live indexers, so a busy cluster (429, 5xx, a timeout, a dropped
/// connection) is a reason to wait and try again, not to fail. Only idempotent calls go through
/// here: each is retried with `Backoff.adminRead` until the next attempt would start after
/// `patience`, then the failure stands.
///
/// `call` gets the timeout of its attempt. A call that timed out is not undone: the cluster still
/// works on it, and the same call sent again waits in the queue behind it. So after a timeout the
/// next attempt waits twice as long, from the client's request timeout up to the bulk writer's
/// ceiling (`BulkWriter.timeoutPolicy`), never past `patience`: a soak's reindex failed to register
/// its new index after 222 s of 30-s attempts while the live indexers' bulk requests took minutes.
/// `longestWaitFirst` starts at the ceiling, for a call known to take long on a busy cluster (the
/// refresh after a large load).
func retryingWhileBusy<T>(_ client: ElasticsearchClient, for patience: Duration = .seconds(600), longestWaitFirst: Bool = false,
                          _ call: (_ timeout: Duration) async throws -> T) async throws -> T {
    let policy = BulkWriter.timeoutPolicy(requestTimeout: client.configuration.requestTimeout)
    let deadline = ContinuousClock.now + patience
    var timeout = longestWaitFirst ? policy.ceiling : policy.floor
    return try await Backoff.adminRead.retrying(for: patience, if: { error in
        guard let error = error as? ElasticsearchError, error.isTransient else { return false }
        if error.code == .timeout { timeout = min(timeout * 2, policy.ceiling) }
        return true
    }) {
        try await call(min(timeout, max(policy.floor, deadline - ContinuousClock.now)))
    }
}
