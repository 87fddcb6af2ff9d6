import ElasticsearchClient
import Logging
import OrderSearchAPI
import ServiceSupport

HeapTuning.limitArenas()
let logger = Observability.bootstrap(label: "order-search-api")
let configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
let auth = await Startup.authMode(configuration, logger: logger)
let signer = await Startup.tokenSigner()
let client = ElasticsearchClient(configuration: .init(environment: ProcessInfoEnvironment.all, connections: 16))
let app = buildSearchApplication(client: client, alias: configuration.ordersIndex, auth: auth, signer: signer,
                                 address: configuration.searchAPIAddress, limits: configuration.httpLimits,
                                 consistency: ConsistencyWaitPolicy(environment: ProcessInfoEnvironment.all), logger: logger)
if let info = try? await client.clusterInfo() {
    logger.info("search cluster", metadata: ["es.flavour": "\(info.flavour.rawValue)", "es.version": "\(info.version)"])
}
logger.info("starting", metadata: ["http.address": "\(configuration.searchAPIAddress)", "es.alias": "\(configuration.ordersIndex)"])
try await runUntilSignalled([app], logger: logger)
await client.shutdown(patience: .milliseconds(500))
