import Logging
import OrderStore
import OrderWriteAPI
import LibPQClient
import ServiceSupport

HeapTuning.limitArenas()
let logger = Observability.bootstrap(label: "order-write-api")
let configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
let auth = await Startup.authMode(configuration, logger: logger)
let signer = await Startup.tokenSigner()
let pool = PostgresPool(
    configuration: .init(connectionString: configuration.databaseURL, size: 16, applicationName: "order-write-api",
                         acquireTimeout: .seconds(5), maxWaiters: 256, session: .api(environment: ProcessInfoEnvironment.all)),
    logger: logger
)
let service = WriteService(pool: pool, logger: logger)
let app = buildWriteApplication(service: service, auth: auth, signer: signer, address: configuration.writeAPIAddress,
                                limits: configuration.httpLimits, logger: logger)
logger.info("starting", metadata: ["http.address": "\(configuration.writeAPIAddress)"])
try await runUntilSignalled([app, IdempotencyKeyPruner(service: service, logger: logger)], logger: logger)
await pool.shutdown()
