import Metrics
import SiloCore

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
