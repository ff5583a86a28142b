/// The one error type Silo raises: a stable ``Code`` a program can act on and a message a person can.
///
/// Each front end maps the code in one place: the CLI to an exit status, the server (later) to an HTTP
/// status, the mount to an errno.
public struct SiloError: Error, Sendable, CustomStringConvertible {
    /// A stable, extensible identifier of what went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible, RawRepresentable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidName = Code(rawValue: "invalid_name")
        public static let invalidPath = Code(rawValue: "invalid_path")
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        public static let volumeNotFound = Code(rawValue: "volume_not_found")
        public static let volumeExists = Code(rawValue: "volume_exists")
        public static let versionNotFound = Code(rawValue: "version_not_found")
        public static let pathNotFound = Code(rawValue: "path_not_found")
        public static let pathExists = Code(rawValue: "path_exists")
        public static let notADirectory = Code(rawValue: "not_a_directory")
        public static let isADirectory = Code(rawValue: "is_a_directory")
        public static let directoryNotEmpty = Code(rawValue: "directory_not_empty")
        /// A commit's precondition did not hold; nothing was applied.
        public static let conflict = Code(rawValue: "conflict")
        /// A block's bytes do not match its hash.
        public static let corruptBlock = Code(rawValue: "corrupt_block")
        /// A commit names a block the store does not hold.
        public static let missingBlock = Code(rawValue: "missing_block")
        public static let noSpace = Code(rawValue: "no_space")
        public static let io = Code(rawValue: "io_error")
        public static let storage = Code(rawValue: "storage_error")
        public static let localFile = Code(rawValue: "local_file_error")
        /// A change asked of something that cannot change: a read-only mount, an old version.
        public static let readOnly = Code(rawValue: "read_only")
        /// No token, or one the server does not know or has revoked.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// The token is valid but may not do this (an admin-only call).
        public static let forbidden = Code(rawValue: "forbidden")
        /// A request body or header over the server's limit.
        public static let tooLarge = Code(rawValue: "too_large")
        /// Too many requests of one kind at once; retry after a moment.
        public static let tooManyRequests = Code(rawValue: "too_many_requests")
        /// The server is shutting down or cannot be reached; retry later.
        public static let unavailable = Code(rawValue: "unavailable")
        /// A byte range that lies past the end of what it ranges over.
        public static let invalidRange = Code(rawValue: "invalid_range")
        /// An operation a volume does not allow on this kind of path (a hard link to a directory).
        public static let notPermitted = Code(rawValue: "not_permitted")
        /// A file lock another owner holds, asked for without waiting.
        public static let locked = Code(rawValue: "locked")
        /// A lock holder's lease ran out before it renewed it: the locks it held are gone, and it may
        /// take new ones only under a new name.
        public static let leaseLapsed = Code(rawValue: "lease_lapsed")
        /// A route or method the API does not have.
        public static let notFound = Code(rawValue: "not_found")
    }

    public var code: Code
    public var message: String
    /// The paths a ``Code/conflict`` concerns, for programs that want them without parsing the message.
    public var paths: [String]
    public var underlying: (any Error & Sendable)?
    public var file: String
    public var line: Int

    public init(
        _ code: Code,
        _ message: String,
        paths: [String] = [],
        underlying: (any Error & Sendable)? = nil,
        file: String = #fileID,
        line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.paths = paths
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    public var description: String { message }
}
