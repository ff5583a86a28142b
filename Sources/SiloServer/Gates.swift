import Hummingbird
import Metrics
import SiloCore
import Synchronization

/// Lets commits in until shutdown begins, then refuses new ones and waits for those in flight.
actor CommitGate {
    private var inFlight = 0 {
        didSet { gauge.record(inFlight) }
    }
    /// `silo_commits_in_flight`: the commits a shutdown would wait for.
    private let gauge = Gauge(label: "silo_commits_in_flight")
    private var draining = false
    private var drained: [CheckedContinuation<Void, Never>] = []

    /// Admits a commit, or throws ``SiloError/Code/unavailable`` once the server is shutting down.
    func enter() throws {
        guard !draining else {
            throw SiloError(.unavailable, "the server is shutting down and takes no new commits; retry against it once it is back")
        }
        inFlight += 1
    }

    func leave() {
        inFlight -= 1
        if draining && inFlight == 0 { resumeDrained() }
    }

    /// Refuses new commits from now on and returns when every admitted one has finished.
    func drain() async {
        beginDraining()
        await waitUntilDrained()
    }

    /// Refuses new commits from now on.
    func beginDraining() {
        draining = true
    }

    /// Returns when no admitted commit is left (at once if none is in flight).
    func waitUntilDrained() async {
        guard inFlight > 0 else { return }
        await withCheckedContinuation { drained.append($0) }
    }

    var commitsInFlight: Int { inFlight }

    private func resumeDrained() {
        for continuation in drained { continuation.resume() }
        drained = []
    }

    /// Runs `body` as an admitted commit.
    func admit<R: Sendable>(_ body: @Sendable () async throws -> R) async throws -> R {
        try enter()
        defer { leave() }
        return try await body()
    }
}

/// Caps the block uploads each token has in flight, so one client cannot take every I/O thread.
actor UploadLimiter {
    private let limit: Int
    private var inFlight: [String: Int] = [:] {
        didSet { gauge.record(inFlight.values.reduce(0, +)) }
    }
    /// `silo_block_uploads_in_flight`: uploads holding a slot, over every token.
    private let gauge = Gauge(label: "silo_block_uploads_in_flight")

    init(limit: Int) { self.limit = limit }

    func acquire(_ tokenID: String) throws {
        let current = inFlight[tokenID, default: 0]
        guard current < limit else {
            throw SiloError(
                .tooManyRequests,
                "this token already has \(limit) block uploads in flight; wait for some to finish and retry"
            )
        }
        inFlight[tokenID] = current + 1
    }

    func release(_ tokenID: String) {
        let remaining = inFlight[tokenID, default: 1] - 1
        inFlight[tokenID] = remaining == 0 ? nil : remaining
    }
}

/// The bytes of request bodies the server holds in memory at once, across all requests: block uploads
/// and commit bodies reserve what they may buffer (their Content-Length, else the route's limit)
/// before reading, and a request that would pass the budget is answered 503 with Retry-After, which
/// clients retry with backoff, instead of the server running out of memory.
final class MemoryBudget: Sendable {
    let limit: Int
    private let used = Mutex(0)
    /// What is reserved now, for operators (`/metrics`).
    private let gauge = Gauge(label: "silo_request_bytes_reserved")

    init(limit: Int) { self.limit = limit }

    func reserve(_ bytes: Int) throws(SiloError) {
        let now = used.withLock { used -> Int? in
            guard used + bytes <= limit || used == 0 else { return nil }
            used += bytes
            return used
        }
        guard let now else {
            throw SiloError(.unavailable, "the server is holding as many request bodies as its memory budget allows; retry shortly")
        }
        gauge.record(now)
    }

    func release(_ bytes: Int) {
        gauge.record(used.withLock { used in
            used -= bytes
            return used
        })
    }

    /// What a request's body may take: its declared length when it states one within `limit`, else `limit`.
    static func size(of request: Request, limit: Int) -> Int {
        guard let text = request.headers[.contentLength], let length = Int(text), length >= 0 else { return limit }
        return min(length, limit)
    }
}
