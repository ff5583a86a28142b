import SiloCore

/// What a tree of files holds, as plainly as possible: the reference the mounts are checked against.
/// Paths have no leading slash; the root is implicit.
struct Tree: Equatable {
    enum Node: Equatable {
        case file([UInt8], mode: UInt32)
        case directory
        case link(String)
    }

    var nodes: [String: Node] = [:]

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    static func isWithin(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory + "/")
    }

    func exists(_ path: String) -> Bool { path.isEmpty || nodes[path] != nil }

    func isDirectory(_ path: String) -> Bool { path.isEmpty || nodes[path] == .directory }

    /// The names directly in `directory`.
    func children(_ directory: String) -> [String] {
        nodes.keys.filter { Self.parent($0) == directory }.map { String($0.split(separator: "/").last!) }.sorted()
    }

    func file(_ path: String) -> [UInt8]? {
        if case .file(let bytes, _)? = nodes[path] { return bytes }
        return nil
    }

    /// Everything at or beneath `path`.
    func subtree(_ path: String) -> [String: Node] {
        nodes.filter { Self.isWithin($0.key, path) }
    }

    mutating func replaceSubtree(_ path: String, with other: Tree) {
        nodes = nodes.filter { !Self.isWithin($0.key, path) }.merging(other.subtree(path)) { $1 }
    }

    mutating func move(_ source: String, to target: String) {
        var moved: [String: Node] = [:]
        for (path, node) in nodes {
            if Self.isWithin(path, source) {
                moved[target + path.dropFirst(source.count)] = node
            } else {
                moved[path] = node
            }
        }
        nodes = moved
    }
}
