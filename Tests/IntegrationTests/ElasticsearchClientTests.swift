import ElasticsearchClient
import Testing

/// What only the real server shows.
@Suite struct ElasticsearchClusterTests {
    @Test func detectsTheClusterFlavour() async throws {
        let osmem = ElasticsearchClient(configuration: .init(baseURL: try TestEnvironment.elasticsearchURL))
        let info = try await osmem.clusterInfo()
        #expect(info.flavour == .opensearch)  // osmem-server reports the OpenSearch API it implements
        #expect(info.version.first?.isNumber == true)
        await osmem.shutdown()
    }
}
