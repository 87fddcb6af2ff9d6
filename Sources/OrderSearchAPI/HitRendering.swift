import IndexSchema
import JSONSupport
import RequestParsing
import ServiceSupport

/// The API's answer from Elasticsearch's: hits in the contract's shape, facets, the next cursor.
extension SearchHandlers {
    func render(_ result: JSONValue, query: SearchQuery, into w: inout JSONWriter, started: ContinuousClock.Instant) throws {
        let parameters = query.parameters
        guard let hitsObject = result["hits"], let hits = hitsObject["hits"]?.arrayValue else {
            throw Problem(.badGateway, detail: "the search cluster sent an unexpected answer")
        }
        let total = hitsObject["total"]?["value"]?.intValue ?? 0
        let exact = (hitsObject["total"]?["relation"]?.stringValue ?? "eq") == "eq"
        w.raw("{\"total\":"); w.int(total)
        w.raw(",\"total_exact\":"); w.bool(exact)
        w.raw(",\"hits\":[")
        let page = hits.prefix(parameters.size)
        for (i, hit) in page.enumerated() {
            if i > 0 { w.raw(",") }
            Self.renderHit(source: hit["_source"] ?? .null, highlight: hit["highlight"], into: &w)
        }
        w.raw("],\"facets\":{")
        let aggregations = result["aggregations"]
        for (i, name) in ["status", "country", "currency"].enumerated() {
            if i > 0 { w.raw(",") }
            w.key(name)
            w.raw("[")
            var first = true
            for bucket in aggregations?[name]?["values"]?["buckets"]?.arrayValue ?? [] {
                guard let key = bucket["key"]?.stringValue, let count = bucket["doc_count"]?.intValue, count > 0 else { continue }
                if !first { w.raw(",") }
                first = false
                w.raw("{\"value\":"); w.string(key); w.raw(",\"count\":"); w.int(count); w.raw("}")
            }
            w.raw("]")
        }
        w.raw(",\"total_range\":[")
        var first = true
        let rangeBuckets = aggregations?["total_range"]?["values"]?["buckets"]?.arrayValue ?? []
        for bucket in SearchQuery.totalBuckets {
            let count = rangeBuckets.first { $0["key"]?.stringValue == bucket.key }?["doc_count"]?.intValue ?? 0
            guard count > 0 else { continue }
            if !first { w.raw(",") }
            first = false
            w.raw("{\"value\":"); w.string(bucket.key)
            w.raw(",\"from\":"); w.string(bucket.from)
            w.raw(",\"to\":"); w.optionalString(bucket.to)
            w.raw(",\"count\":"); w.int(count); w.raw("}")
        }
        w.raw("],\"created_month\":[")
        first = true
        for bucket in aggregations?["created_month"]?["values"]?["buckets"]?.arrayValue ?? [] {
            guard let key = bucket["key"]?.stringValue, let count = bucket["doc_count"]?.intValue, count > 0 else { continue }
            if !first { w.raw(",") }
            first = false
            w.raw("{\"value\":"); w.string(key); w.raw(",\"count\":"); w.int(count); w.raw("}")
        }
        w.raw("]},\"next_cursor\":")
        if hits.count > parameters.size, let last = page.last, let sort = last["sort"]?.arrayValue {
            w.string(query.cursor(after: sort).encoded(with: signer))
        } else {
            w.raw("null")
        }
        let elapsed = ContinuousClock.now - started
        w.raw(",\"took_ms\":"); w.int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        w.raw("}")
    }

    /// Elasticsearch's `html` encoder also writes `/` as `&#x2F;`; the contract's fragments are the
    /// text escaped as HTML needs it (`<`, `&`, quotes), and a `/` needs nothing. An `&#x2F;` of the
    /// text itself arrives as `&amp;#x2F;`, so only the encoder's own is turned back.
    static func unescapingSlashes(_ fragment: String) -> String {
        fragment.contains("&#x2F;") ? fragment.replacing("&#x2F;", with: "/") : fragment
    }

    static func renderHit(source s: JSONValue, highlight: JSONValue?, into w: inout JSONWriter) {
        func str(_ v: JSONValue?) { if let v, case .string(let x) = v { w.string(x) } else { w.raw("null") } }
        func num(_ v: JSONValue?) { if let v, case .number(let x) = v { w.rawBytes(x.utf8) } else { w.raw("null") } }
        // Output keys are the API's (the contract's hit shape); values are read by index field.
        w.raw("{\"id\":"); str(s[.orderID])
        w.raw(",\"version\":"); num(s[.version])
        w.raw(",\"status\":"); str(s[.status])
        w.raw(",\"customer\":{\"id\":"); str(s[.customerID])
        w.raw(",\"name\":"); str(s[.customerName])
        w.raw(",\"email\":"); str(s[.customerEmail])
        w.raw("},\"currency\":"); str(s[.currency])
        w.raw(",\"total\":"); str(s[.total])
        w.raw(",\"item_count\":"); num(s[.itemCount])
        w.raw(",\"items\":[")
        for (i, item) in (s[.items]?.arrayValue ?? []).enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{\"sku\":"); str(item[IndexField.itemSKU.leaf])
            w.raw(",\"name\":"); str(item[IndexField.itemName.leaf])
            w.raw(",\"quantity\":"); num(item[IndexField.itemQuantity.leaf])
            w.raw(",\"unit_price\":"); str(item[IndexField.itemUnitPrice.leaf])
            w.raw("}")
        }
        w.raw("],\"shipping_country\":"); str(s[.shippingCountry])
        w.raw(",\"shipping_city\":"); str(s[.shippingCity])
        w.raw(",\"created_at\":"); str(s[.createdAt])
        w.raw(",\"updated_at\":"); str(s[.updatedAt])
        if let highlight {
            w.raw(",\"highlight\":{")
            var first = true
            for field in SearchQuery.highlightFields {
                guard let fragments = highlight[field.index.path]?.arrayValue else { continue }
                if !first { w.raw(",") }
                first = false
                w.key(field.api)
                w.value(.array(fragments.map { $0.stringValue.map { .string(Self.unescapingSlashes($0)) } ?? $0 }))
            }
            w.raw("}")
        } else {
            w.raw(",\"highlight\":{}")
        }
        w.raw("}")
    }
}
