import ElasticsearchClient
import Logging
import OrderIndexer
import LibPQClient
import ReadModel
import ServiceSupport

let logger = Observability.bootstrap(label: "order-indexer")
let environment = ProcessInfoEnvironment.all
let configuration = ServiceConfiguration(environment: environment)
let auth = await Startup.authMode(configuration, logger: logger)
var indexerConfiguration = IndexerService.Configuration()
if let workers = environment["INDEXER_WORKERS"].flatMap(Int.init), workers > 0 { indexerConfiguration.workers = workers }
if let batch = environment["INDEXER_BATCH_SIZE"].flatMap(Int.init), batch > 0 { indexerConfiguration.processor.batchSize = batch }
if let delay = environment["INDEXER_BATCH_DELAY_MS"].flatMap(Int.init), delay >= 0 { indexerConfiguration.batchDelay = .milliseconds(delay) }

let pool = PostgresPool(
    configuration: .init(connectionString: configuration.databaseURL, size: indexerConfiguration.workers + 3, applicationName: "order-indexer"),
    logger: logger
)
let client = ElasticsearchClient(configuration: .init(environment: environment, connections: indexerConfiguration.workers + 1))
let indexer = IndexerService(
    pool: pool, client: client, layout: IndexLayout(alias: configuration.ordersIndex), databaseURL: configuration.databaseURL,
    configuration: indexerConfiguration, logger: logger
)
let metrics = buildIndexerMetricsApplication(pool: pool, client: client, auth: auth, address: configuration.indexerMetricsAddress, logger: logger)
logger.info("starting", metadata: ["indexer.workers": "\(indexerConfiguration.workers)", "es.alias": "\(configuration.ordersIndex)"])
try await runUntilSignalled([indexer, metrics], logger: logger)
await client.shutdown()
await pool.shutdown()
