import CSiloFUSE

#if canImport(Glibc)
import Glibc
#endif

/// One request as the kernel sent it: the header and the opcode's arguments, in a buffer the
/// transport owns (valid only while the request is being dispatched).
public struct FUSERequest {
    let header: fuse_in_header
    let body: UnsafeRawBufferPointer

    /// The request in `bytes`, or nil when they are too short to hold a header.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= MemoryLayout<fuse_in_header>.size else { return nil }
        header = bytes.loadUnaligned(as: fuse_in_header.self)
        body = UnsafeRawBufferPointer(rebasing: bytes[MemoryLayout<fuse_in_header>.size...])
    }

    public var opcode: UInt32 { header.opcode }
    /// The request's id, which its reply carries.
    public var unique: UInt64 { header.unique }
    public var node: UInt64 { header.nodeid }
    /// The process the request comes from.
    public var caller: FUSECaller { FUSECaller(uid: header.uid, gid: header.gid, pid: header.pid) }

    /// The fixed-size argument at the start of the body; nil when the body is shorter.
    func argument<T>(_ type: T.Type) -> T? {
        guard body.count >= MemoryLayout<T>.size else { return nil }
        return body.loadUnaligned(as: T.self)
    }

    /// The argument, or EINVAL for a body too short to hold it.
    func required<T>(_ type: T.Type) throws -> T {
        guard let value = argument(type) else { throw FUSEError(EINVAL) }
        return value
    }

    /// The NUL-terminated name at `offset` in the body.
    func name(at offset: Int = 0) -> String? {
        guard offset >= 0, offset < body.count else { return nil }
        let bytes = body[(body.startIndex + offset)...]
        guard let end = bytes.firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    /// The name at `offset`: EINVAL when there is none, ENAMETOOLONG beyond `maximum` bytes (a name in
    /// a directory: 255, as ext4 allows; a symlink's target: 4095).
    func requiredName(at offset: Int = 0, maximum: Int = 255) throws -> String {
        guard let name = name(at: offset) else { throw FUSEError(EINVAL) }
        guard name.utf8.count <= maximum else { throw FUSEError(ENAMETOOLONG) }
        return name
    }

    /// `count` bytes of the body from `offset`, or EINVAL when the body is shorter.
    func bytes(at offset: Int, count: Int) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, count >= 0, offset <= body.count, count <= body.count - offset else { throw FUSEError(EINVAL) }
        return UnsafeRawBufferPointer(rebasing: body[(body.startIndex + offset)..<(body.startIndex + offset + count)])
    }
}

/// The answer to one request, sent once into its transport's slot.
struct FUSEReply: Sendable {
    let slot: any FUSEReplySlot

    func send<T>(_ value: T) {
        withUnsafeBytes(of: value) { slot.send(error: 0, $0) }
    }

    func send(bytes: [UInt8]) {
        bytes.withUnsafeBytes { slot.send(error: 0, $0) }
    }

    func ok() {
        slot.send(error: 0, UnsafeRawBufferPointer(start: nil, count: 0))
    }

    func fail(_ errno: Int32) {
        slot.send(error: -errno, UnsafeRawBufferPointer(start: nil, count: 0))
    }
}
