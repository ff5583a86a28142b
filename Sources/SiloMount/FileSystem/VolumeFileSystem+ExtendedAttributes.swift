import SiloCore

#if canImport(Glibc)
import Glibc
#endif

/// Extended attributes, kept per path as the volume records them and committed with it. The kernel
/// has checked who may (write permission for `user.*`, CAP_SYS_ADMIN for `trusted.*`); `system.*`
/// (ACLs) is not kept.
extension VolumeFileSystem {
    public func extendedAttribute(_ inode: Inode, name: String) async throws -> [UInt8] {
        try Self.check(name)
        guard let value = try await node(inode).entry.extendedAttributes[name] else {
            throw SiloError.local("\(name) is not set", errno: ENODATA)
        }
        return value
    }

    /// The names set on `inode` that `caller` may see: `trusted.*` only to root, as on a local disk.
    public func extendedAttributeNames(_ inode: Inode, caller: Owner = .root) async throws -> [String] {
        let names = try await node(inode).entry.extendedAttributes.keys.sorted()
        return caller.uid == 0 ? names : names.filter { !$0.hasPrefix("trusted.") }
    }

    /// Sets `name`; with `XATTR_CREATE` only if it is not set (EEXIST), with `XATTR_REPLACE` only if
    /// it is (ENODATA). Beyond ext4's limits: ERANGE for a long name, ENOSPC for a full path.
    public func setExtendedAttribute(_ inode: Inode, name: String, value: [UInt8], flags: Int32) async throws {
        try Self.check(name)
        try await change(inode) { attributes in
            let present = attributes[name] != nil
            if flags & Self.createOnly != 0 && present { throw SiloError.local("\(name) is set already", errno: EEXIST) }
            if flags & Self.replaceOnly != 0 && !present { throw SiloError.local("\(name) is not set", errno: ENODATA) }
            attributes[name] = value
        }
    }

    public func removeExtendedAttribute(_ inode: Inode, name: String) async throws {
        try Self.check(name)
        try await change(inode) { attributes in
            guard attributes.removeValue(forKey: name) != nil else { throw SiloError.local("\(name) is not set", errno: ENODATA) }
        }
    }

    /// setxattr's flags (`<sys/xattr.h>`, which Swift does not import).
    static let createOnly: Int32 = 1
    static let replaceOnly: Int32 = 2

    private static func check(_ name: String) throws {
        guard let namespace = ExtendedAttributeLimits.namespaces.first(where: { name.hasPrefix($0) }) else {
            throw SiloError.local("\(name): a volume keeps user.*, trusted.* and security.* attributes", errno: EOPNOTSUPP)
        }
        guard name.utf8.count > namespace.utf8.count else { throw SiloError.local("\(name) names no attribute", errno: EINVAL) }
        guard name.utf8.count <= ExtendedAttributeLimits.nameBytes else { throw SiloError.local("\(name) is too long", errno: ERANGE) }
    }

    /// Applies `edit` to the path's attributes and keeps the result as a local change.
    private func change(_ inode: Inode, _ edit: (inout ExtendedAttributes) throws -> Void) async throws {
        let path = try inodes.path(of: inode)
        let overlay = try changeable(path)
        guard let entry = try await merged(path) else { throw Self.notFound(path) }
        var attributes = entry.extendedAttributes
        try edit(&attributes)
        do {
            try ExtendedAttributeLimits.validate(attributes, at: path)
        } catch {
            throw SiloError.local(error.message, errno: ENOSPC)
        }
        try await setMetadata(path, entry, in: overlay, extendedAttributes: attributes)
        try await publish([path], conflict: Self.notFound(path))
    }
}
