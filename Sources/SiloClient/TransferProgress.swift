/// How far a transfer has come; reported to a ``TransferProgress/Handler`` as blocks and files complete.
public struct TransferProgress: Sendable {
    public var filesDone: Int
    public var filesTotal: Int
    public var bytesDone: Int64
    public var bytesTotal: Int64

    public typealias Handler = @Sendable (TransferProgress) -> Void
}
