import JSONSupport
import IndexSchema
import OrderDomain
import RequestParsing
import Security
import TokenSigning

/// Builds the Elasticsearch request for a search. User text only ever appears
/// as the `query` of `multi_match` or as a `term` value: never as query syntax.
struct SearchQuery {
    let parameters: SearchParameters
    /// For a `customer` principal: the only customer whose orders the query may
    /// see. A filter of the query itself, so hits and every facet count obey it.
    let scopeCustomerID: String?
    /// search_after values from the cursor, if any.
    let searchAfter: [JSONValue]?

    init(parameters: SearchParameters, scopeCustomerID: String? = nil, searchAfter: [JSONValue]? = nil) {
        self.parameters = parameters
        self.scopeCustomerID = scopeCustomerID
        self.searchAfter = searchAfter
    }

    /// The cursor that continues this query after a hit with these sort values.
    func cursor(after sortValues: [JSONValue]) -> Cursor {
        Cursor(query: parameters.canonicalQuery, scope: scopeCustomerID ?? "", searchAfter: sortValues)
    }

    /// What a request with a cursor asks for: the query the cursor carries, continued after its
    /// last hit. The request may resend that query's parameters (in any order or spelling); nil if
    /// it sends other ones, or the cursor is altered, signed with another key, made for another
    /// principal's scope, or holds values that do not fit its sort.
    static func continuing(_ encoded: String, requested: SearchParameters, scope: String?, signer: TokenSigner) -> SearchQuery? {
        guard let cursor = Cursor(encoded: encoded, signer: signer), cursor.scope == scope ?? "",
              let carried = try? SearchParameters(query: cursor.query), carried.cursor == nil,
              !requested.hasParametersBesideCursor || requested.canonicalQuery == carried.canonicalQuery
        else { return nil }
        let query = SearchQuery(parameters: carried, scopeCustomerID: scope, searchAfter: cursor.searchAfter)
        return cursor.fits(sortFields: query.sortFields) ? query : nil
    }

    static let totalBuckets: [(key: String, from: String, to: String?)] = [
        ("0-50", "0", "50"), ("50-100", "50", "100"), ("100-250", "100", "250"), ("250-1000", "250", "1000"), ("1000-", "1000", nil),
    ]

    /// Highlight field in the index → field name in the API response.
    static let highlightFields: [(index: IndexField, api: String)] = [
        (.customerName, "customer.name"), (.customerEmailText, "customer.email"), (.itemNames, "items.name"),
        (.itemSKUsText, "items.sku"), (.note, "note"), (.shippingCity, "shipping_city"), (.trackingNumberText, "tracking_number"),
    ]

    /// The sort: (field, direction) pairs, always ending with the unique order id.
    var sortKeys: [(field: String, direction: String)] {
        let created = IndexField.createdAt.path, total = IndexField.total.path, id = IndexField.orderID.path
        return switch parameters.sort {
        case .relevance: [("_score", "desc"), (created, "desc"), (id, "asc")]
        case .createdAtDescending: [(created, "desc"), (id, "asc")]
        case .createdAt: [(created, "asc"), (id, "asc")]
        case .total: [(total, "asc"), (id, "asc")]
        case .totalDescending: [(total, "desc"), (id, "asc")]
        }
    }

    /// Field names of the sort, in order (the cursor validates against them).
    var sortFields: [String] { sortKeys.map(\.field) }

    var sort: JSONValue { .array(sortKeys.map { .object(JSONObject([($0.field, .string($0.direction))])) }) }

    enum Facet: CaseIterable { case status, country, currency, total, created }

    func facetFilters(except excluded: Facet?) -> [JSONValue] {
        var filters: [JSONValue] = []
        if excluded != .status, !parameters.statuses.isEmpty { filters.append(["terms": .object(JSONObject([(IndexField.status.path, .array(parameters.statuses.map { .string($0) }))]))]) }
        if excluded != .country, !parameters.countries.isEmpty {
            filters.append(["terms": .object(JSONObject([(IndexField.shippingCountry.path, .array(parameters.countries.map { .string($0) }))]))])
        }
        if excluded != .currency, !parameters.currencies.isEmpty {
            filters.append(["terms": .object(JSONObject([(IndexField.currency.path, .array(parameters.currencies.map { .string($0) }))]))])
        }
        if excluded != .total, parameters.totalMin != nil || parameters.totalMax != nil {
            var range = JSONObject()
            if let min = parameters.totalMin { range["gte"] = .number(min.description) }
            if let max = parameters.totalMax { range["lte"] = .number(max.description) }
            filters.append(["range": .object(JSONObject([(IndexField.total.path, .object(range))]))])
        }
        if excluded != .created, parameters.createdFrom != nil || parameters.createdTo != nil {
            var range = JSONObject()
            if let from = parameters.createdFrom { range["gte"] = .string(from.rfc3339) }
            if let to = parameters.createdTo { range["lt"] = .string(to.rfc3339) }
            filters.append(["range": .object(JSONObject([(IndexField.createdAt.path, .object(range))]))])
        }
        return filters
    }

    /// How many words of `q` the typo-tolerant clauses match, and how many spellings each fuzzy word
    /// may expand to. Elasticsearch 8 counts every clause of the rewritten query against a limit it
    /// derives from the heap, 1024 at the least (`too_many_nested_clauses`; earlier 8.x releases answer a 500): a
    /// pasted paragraph of 256 words across 7 fields and 2 clauses would pass it many times over.
    /// 8 words × 7 fields × 2 × 8 spellings = 896 stays below it whatever `q` holds.
    static let maximumMatchedWords = 8
    static let maximumExpansions = 8

    /// `q` up to the end of its `maximumMatchedWords`th word, where words are counted so that there
    /// are never fewer than the standard tokenizer (UAX #29, as Lucene applies it) makes tokens: the
    /// cut is never late. A word is a run of one kind of letters (`WordKind`); Han, Hiragana and
    /// emoji are a word each.
    static func matchedText(_ q: String) -> String {
        var words = 0
        var previous = WordKind.separator
        var end = q.unicodeScalars.endIndex
        for index in q.unicodeScalars.indices {
            let kind = WordKind(q.unicodeScalars[index])
            if kind != .separator && (kind == .alone || kind != previous) {
                words += 1
                if words > maximumMatchedWords { end = index; break }
            }
            previous = kind
        }
        return String(q.unicodeScalars[..<end])
    }

    /// What the standard tokenizer does with a character: join it to the same kind before it
    /// (letters and digits of most scripts, Katakana, Southeast Asian scripts), make it a token alone
    /// (Han ideographs and radicals, Hiragana, emoji), or drop it (spaces, punctuation, other symbols;
    /// counting one of these as a separator only ever counts more words).
    enum WordKind {
        case letters, katakana, southeastAsian, alone, separator

        init(_ scalar: Unicode.Scalar) {
            let value = scalar.value, properties = scalar.properties
            switch value {
            case 0x2E80...0x2FDF, 0x3040...0x309F, 0x1B000...0x1B16F: self = .alone  // radicals, Hiragana
            case 0x30A0...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9F: self = .katakana
            case 0x0E00...0x0EFF, 0x1000...0x109F, 0x1780...0x17FF: self = .southeastAsian  // Thai, Lao, Myanmar, Khmer
            default:
                if properties.isIdeographic || (properties.isEmoji && value > 0x7F) { self = .alone }
                else if properties.isAlphabetic || properties.numericType != nil || scalar == "_" { self = .letters }
                else { self = .separator }
            }
        }
    }

    var textQuery: JSONValue? {
        guard let q = parameters.q else { return nil }
        let text = JSONValue.string(q)
        let matched = JSONValue.string(Self.matchedText(q))
        let fields: JSONValue = .array([(IndexField.customerName, 3), (.customerEmailText, 2), (.itemNames, 2), (.itemSKUsText, 2), (.note, 1),
                                        (.shippingCity, 1), (.trackingNumberText, 1)].map { .string($0.1 == 1 ? $0.0.path : "\($0.0.path)^\($0.1)") })
        return ["bool": [
            "should": [
                // Search as you type: every word but the last typo-tolerant, the last one a prefix.
                ["multi_match": [
                    "query": matched, "type": "bool_prefix", "operator": "and", "fuzziness": "AUTO", "prefix_length": 1, "lenient": true,
                    "max_expansions": .int(Self.maximumExpansions), "fields": fields,
                ]],
                // Complete words, every one typo-tolerant (a typo in the last word too).
                ["multi_match": [
                    "query": matched, "type": "best_fields", "operator": "and", "fuzziness": "AUTO", "prefix_length": 1, "lenient": true,
                    "max_expansions": .int(Self.maximumExpansions), "fields": fields,
                ]],
                Self.exact(.orderID, text, boost: 10), Self.exact(.customerID, text, boost: 5), Self.exact(.customerEmail, text, boost: 5),
                Self.exact(.itemSKUs, text, boost: 5), Self.exact(.trackingNumber, text, boost: 5),
            ],
            "minimum_should_match": 1,
        ]]
    }

    /// An exact match on a keyword field, scored with `boost`.
    static func exact(_ field: IndexField, _ text: JSONValue, boost: Int) -> JSONValue {
        ["term": .object(JSONObject([(field.path, ["value": text, "boost": .int(boost)])]))]
    }

    func body() -> [UInt8] {
        var must: [JSONValue] = []
        if let text = textQuery { must.append(text) }
        var filter: [JSONValue] = []
        if let scopeCustomerID { filter.append(["term": .object(JSONObject([(IndexField.customerID.path, .string(scopeCustomerID))]))]) }
        if !parameters.customerIDs.isEmpty {
            filter.append(["terms": .object(JSONObject([(IndexField.customerID.path, .array(parameters.customerIDs.map { .string($0) }))]))])
        }
        if !parameters.skus.isEmpty {
            filter.append(["terms": .object(JSONObject([(IndexField.itemSKUs.path, .array(parameters.skus.map { .string($0) }))]))])
        }

        func filtered(_ facet: Facet, _ aggregation: JSONValue) -> JSONValue {
            let filters = facetFilters(except: facet)
            return ["filter": filters.isEmpty ? ["match_all": [:]] : ["bool": ["filter": .array(filters)]], "aggs": ["values": aggregation]]
        }
        let termsOrder: JSONValue = [["_count": "desc"], ["_key": "asc"]]
        var ranges: [JSONValue] = []
        for bucket in Self.totalBuckets {
            var range: JSONObject = JSONObject([("key", .string(bucket.key)), ("from", .number(bucket.from))])
            if let to = bucket.to { range["to"] = .number(to) }
            ranges.append(.object(range))
        }
        var object = JSONObject()
        object["size"] = .int(parameters.size + 1)  // one extra tells whether another page exists
        object["track_total_hits"] = true
        object["query"] = ["bool": ["must": .array(must), "filter": .array(filter)]]
        let postFilters = facetFilters(except: nil)
        if !postFilters.isEmpty { object["post_filter"] = ["bool": ["filter": .array(postFilters)]] }
        object["sort"] = sort
        if let searchAfter { object["search_after"] = .array(searchAfter) }
        object["_source"] = ["excludes": .array(IndexField.searchOnly.map { .string($0.path) })]
        object["aggs"] = [
            "status": filtered(.status, ["terms": ["field": .string(IndexField.status.path), "size": .int(parameters.facetSize), "order": termsOrder]]),
            "country": filtered(.country, ["terms": ["field": .string(IndexField.shippingCountry.path), "size": .int(parameters.facetSize),
                                                     "order": termsOrder]]),
            "currency": filtered(.currency, ["terms": ["field": .string(IndexField.currency.path), "size": .int(parameters.facetSize),
                                                       "order": termsOrder]]),
            "total_range": filtered(.total, ["range": ["field": .string(IndexField.total.path), "ranges": .array(ranges)]]),
            "created_month": filtered(.created, ["terms": ["field": .string(IndexField.createdMonth.path), "size": 1200, "order": ["_key": "asc"]]]),
        ]
        if parameters.q != nil {
            var fields = JSONObject()
            for field in Self.highlightFields { fields[field.index.path] = ["number_of_fragments": 0] }
            // encoder html: the document's text comes back HTML-escaped, so `<mark>` is the only markup.
            object["highlight"] = ["encoder": "html", "pre_tags": ["<mark>"], "post_tags": ["</mark>"], "require_field_match": false,
                                   "fields": .object(fields)]
        }
        return JSONValue.object(object).serializedBytes
    }
}

/// The Elasticsearch request body the search API sends for a query string
/// (a staff search): lets a benchmark send exactly the same queries directly.
public func elasticsearchSearchBody(forQueryString query: String, signer: TokenSigner) throws -> [UInt8] {
    let parameters = try SearchParameters(query: query)
    var search = SearchQuery(parameters: parameters)
    if let text = parameters.cursor {
        guard let continued = SearchQuery.continuing(text, requested: parameters, scope: nil, signer: signer) else {
            throw SearchParameters.Invalid(parameter: "cursor", message: "is not a cursor of this query")
        }
        search = continued
    }
    return search.body()
}
