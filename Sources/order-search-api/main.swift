import ElasticsearchClient
import Logging
import OrderSearchAPI
import ServiceSupport

let logger = Observability.bootstrap(label: "order-search-api")
let configuration = ServiceConfiguration(environment: ProcessInfoEnvironment.all)
let client = ElasticsearchClient(configuration: .init(environment: ProcessInfoEnvironment.all, connections: 16))
let app = buildSearchApplication(client: client, alias: configuration.ordersIndex, address: configuration.searchAPIAddress, logger: logger)
if let info = try? await client.clusterInfo() {
    logger.info("search cluster", metadata: ["es.flavour": "\(info.flavour.rawValue)", "es.version": "\(info.version)"])
}
logger.info("starting", metadata: ["http.address": "\(configuration.searchAPIAddress)", "es.alias": "\(configuration.ordersIndex)"])
try await runUntilSignalled([app], logger: logger)
await client.shutdown()
