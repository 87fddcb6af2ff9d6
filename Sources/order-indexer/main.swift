import ElasticsearchClient
import Logging
import OrderIndexer
import LibPQClient
import ReadModel
import ServiceSupport

HeapTuning.limitArenas()
let logger = Observability.bootstrap(label: "order-indexer")
let environment = ProcessInfoEnvironment.all
let configuration = ServiceConfiguration(environment: environment)
let auth = await Startup.authMode(configuration, logger: logger)
let indexerConfiguration = await Startup.require("indexer settings") { try IndexerService.Configuration(environment: environment) }

let pool = PostgresPool(
    configuration: .init(connectionString: configuration.databaseURL, size: indexerConfiguration.workers + 3, applicationName: "order-indexer",
                         session: indexerConfiguration.session),
    logger: logger
)
let client = ElasticsearchClient(configuration: .init(environment: environment, connections: indexerConfiguration.workers + 1))
let indexer = IndexerService(
    pool: pool, client: client, layout: IndexLayout(alias: configuration.ordersIndex), databaseURL: configuration.databaseURL,
    configuration: indexerConfiguration, logger: logger
)
let metrics = buildIndexerMetricsApplication(pool: pool, client: client, alias: configuration.ordersIndex, auth: auth, address: configuration.indexerMetricsAddress, logger: logger)
logger.info("starting", metadata: ["indexer.workers": "\(indexerConfiguration.workers)", "es.alias": "\(configuration.ordersIndex)"])
try await runUntilSignalled([indexer, metrics], logger: logger)
await pool.shutdown()
// Batches cut short by the stop grace were handed back; their bulk requests are not waited out.
await client.shutdown(patience: .milliseconds(500))
