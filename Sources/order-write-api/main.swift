import Logging
import OrderStore
import OrderWriteAPI
import PostgresClient
import ServiceSupport

let logger = Observability.bootstrap(label: "order-write-api")
let configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
let pool = PostgresPool(
    configuration: .init(connectionString: configuration.databaseURL, size: 16, applicationName: "order-write-api"),
    logger: logger
)
let service = WriteService(pool: pool, logger: logger)
let app = buildWriteApplication(service: service, address: configuration.writeAPIAddress, logger: logger)
logger.info("starting", metadata: ["http.address": "\(configuration.writeAPIAddress)"])
try await runUntilSignalled([app, IdempotencyKeyPruner(service: service, logger: logger)], logger: logger)
await pool.shutdown()
