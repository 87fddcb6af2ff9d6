import ElasticsearchClient
import JSONSupport
import LibPQClient
import OrderDomain
import Testing
@testable import OrderIndexer
@testable import ReadModel

@Suite struct IndexerConfigurationTests {
    @Test func defaultsKeepEveryTransactionUnderThirtySeconds() throws {
        let configuration = try IndexerService.Configuration(environment: [:])
        #expect(configuration.maxTransaction == .seconds(30))
        #expect(configuration.session.statementTimeout == .seconds(30))
        #expect(configuration.session.idleInTransactionTimeout == .seconds(30))
        #expect(configuration.session.planEveryExecution)
        #expect(configuration.processor.handBackAfter < configuration.processor.lease)
        #expect(configuration.processor.batchSize < configuration.processor.backlogBatchSize)
    }

    @Test func readsEveryVariable() throws {
        let configuration = try IndexerService.Configuration(environment: [
            "INDEXER_WORKERS": "3", "INDEXER_BATCH_SIZE": "100", "INDEXER_BACKLOG_BATCH_SIZE": "1500", "INDEXER_MAX_BULK_BYTES": "1048576",
            "INDEXER_LEASE_MS": "5000", "INDEXER_HAND_BACK_MS": "2000", "INDEXER_MAX_TRANSACTION_MS": "60000", "INDEXER_FAN_OUT_CHUNK": "50",
            "INDEXER_REBUILD_BATCH_SIZE": "4000",
        ])
        #expect(configuration.workers == 3)
        #expect(configuration.processor.batchSize == 100 && configuration.processor.backlogBatchSize == 1500)
        #expect(configuration.processor.maxBulkBytes == 1 << 20)
        #expect(configuration.processor.lease == .seconds(5) && configuration.processor.handBackAfter == .seconds(2))
        #expect(configuration.maxTransaction == .seconds(60))
        #expect(configuration.processor.fanOutChunk == 50)
        #expect(configuration.rebuildBatchSize == 4000)
    }

    /// Guarantee 6's hard limit: no setting lets a transaction of the indexer outlive 60 s.
    @Test(arguments: [("INDEXER_MAX_TRANSACTION_MS", "60001"), ("INDEXER_MAX_TRANSACTION_MS", "0"), ("INDEXER_WORKERS", "-1"),
                      ("INDEXER_BATCH_SIZE", "many"), ("INDEXER_LEASE_MS", "10"), ("INDEXER_REBUILD_BATCH_SIZE", "0")])
    func refusesValuesOutOfRangeNamingTheVariable(variable: String, value: String) {
        #expect { try IndexerService.Configuration(environment: [variable: value]) } throws: {
            ($0 as? IndexerService.Configuration.InvalidSetting)?.variable == variable
        }
    }
}

@Suite struct BulkSizingTests {
    static func document(_ i: Int, lines: Int = 2) -> OrderDocument {
        OrderDocument(orderID: "ord_\(i)", version: 1, status: "paid", customerID: "cus_1", customerVersion: 1, customerName: "Ada Lovelace",
                      customerEmail: "ada@example.com", customerCountry: "DE", currency: "EUR", total: "10.00",
                      items: (0..<lines).map { .init(sku: "SKU-\($0)", name: "Blue Coffee Mug \($0)", quantity: 1, unitPrice: "5.00") },
                      shippingCountry: "DE", shippingCity: "Berlin", trackingNumber: nil, note: "leave at the door",
                      createdAt: Timestamp(millisecondsSinceEpoch: 0), updatedAt: Timestamp(millisecondsSinceEpoch: 0))
    }

    @Test func theEstimateIsCloseToTheRealSize() {
        for lines in [0, 1, 5, 40] {
            let document = Self.document(1, lines: lines)
            var json = JSONWriter()
            document.writeJSON(into: &json)
            let ratio = Double(document.estimatedJSONBytes) / Double(json.bytes.count)
            #expect(ratio > 0.8 && ratio < 1.5, "estimate \(document.estimatedJSONBytes) for \(json.bytes.count) bytes")
        }
    }

    @Test func bulkRequestsAreCutByBytesAndKeepEveryDocumentOnceInOrder() {
        let documents = (0..<1000).map { Self.document($0) }
        var json = JSONWriter()
        documents[0].writeJSON(into: &json)
        let maxBytes = (json.bytes.count + 150) * 64
        var builder = BulkRequestBuilder(target: "orders", requireAlias: true, maxBytes: maxBytes, expectedDocuments: 1000)
        var requests: [BulkRequest] = []
        for (i, document) in documents.enumerated() {
            builder.add(document)
            if i % 100 == 99 { requests += builder.takeFull() }  // as a sender does between reads
        }
        requests += builder.takeAll()
        #expect(requests.count >= 14 && requests.count <= 20, "\(requests.count) requests")
        #expect(requests.allSatisfy { $0.byteCount <= maxBytes })
        #expect(requests.flatMap(\.ids) == documents.map(\.orderID))
        #expect(builder.documentCount == 1000)
        #expect(builder.takeAll().isEmpty)
        // A single document larger than the limit still goes, alone.
        var tiny = BulkRequestBuilder(target: "orders", requireAlias: true, maxBytes: 10, expectedDocuments: 3)
        for document in documents[0..<3] { tiny.add(document) }
        #expect(tiny.takeAll().map(\.count) == [1, 1, 1])
    }

    /// A retry or a dead letter reads each document back from the request's bytes, exactly as sent.
    @Test func eachDocumentsBytesCanBeSentAgain() throws {
        let documents = (0..<5).map { Self.document($0, lines: 3) }
        var builder = BulkRequestBuilder(target: "orders_v2", requireAlias: true, expectedDocuments: 5)
        for document in documents { builder.add(document) }
        let requests = builder.takeAll()
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.ids == documents.map(\.orderID))
        for (i, document) in documents.enumerated() {
            var json = JSONWriter()
            document.writeJSON(into: &json)
            #expect(Array(request.source(of: i)) == json.bytes)
        }
        let retry = request.subset { $0 == 1 || $0 == 4 }
        #expect(retry.ids == ["ord_1", "ord_4"])
        #expect(Array(retry.source(of: 1)) == Array(request.source(of: 4)))
        let lines = retry.body.string.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0].contains("\"_index\":\"orders_v2\"") && lines[0].contains("\"_id\":\"ord_1\""))
        #expect(request.subset { _ in true }.body.bytes == request.body.bytes)
    }
}

@Suite struct HandBackReasonTests {
    /// The metric's reason tells a busy cluster (timeouts) from a failing one and from the database.
    @Test func namesWhatFailed() {
        #expect(IndexerService.handBackReason(BulkWriter.GaveUp(attempts: 3, lastAttempt: .timedOut)) == "cluster_timeout")
        #expect(IndexerService.handBackReason(BulkWriter.GaveUp(attempts: 3, lastAttempt: .errorAnswer)) == "cluster_error_answer")
        #expect(IndexerService.handBackReason(BulkWriter.GaveUp(attempts: 3, lastAttempt: .itemsToRetry)) == "cluster_items_to_retry")
        #expect(IndexerService.handBackReason(BulkWriter.GaveUp(attempts: 3, lastAttempt: .noConnection)) == "cluster_no_connection")
        #expect(IndexerService.handBackReason(ElasticsearchError(code: .http, status: 400, errorType: nil)) == "cluster_refused")
        #expect(IndexerService.handBackReason(LibPQError(code: .queryCanceled)) == "database_queryCanceled")
        #expect(IndexerService.handBackReason(CancellationError()) == "other")
    }
}
