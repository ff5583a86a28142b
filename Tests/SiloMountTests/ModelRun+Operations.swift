import SiloCore
import SiloTesting

/// The operations of a model run: each is applied to a writer's mount and to its view in the model,
/// and the paths it touched are checked at once.
extension ModelRun {
    func operate(_ index: Int) async {
        operations += 1
        let touched: [String]
        do {
            touched = try await (writers[index].exclusive == nil ? operateShared(index) : operateExclusive(index))
        } catch {
            record("\(writers[index].name): \(error)")
            return
        }
        history.append("step \(step) \(writers[index].name) \(lastOperation) \(touched)")
        for path in touched { await check(path, in: writers[index].mount, against: writers[index].view, as: writers[index].name) }
    }

    /// Bytes for a new file: mostly small (kept inline), sometimes a block's worth, rarely several.
    func someBytes() -> [UInt8] {
        let size =
            switch random.below(100) {
            case 0..<90: random.below(3000)
            case 90..<98: random.below(40_000)
            default: (1 << 20) + random.below(300_000)
            }
        return pseudoRandomBytes(count: size, seed: random.next())
    }

    /// One operation of writer A, anywhere beneath its own `a/`, or an overwrite of a common file.
    private func operateExclusive(_ index: Int) async throws -> [String] {
        let mount = writers[index].mount
        let view = writers[index].view
        let mine = view.nodes.keys.filter { $0.hasPrefix("a/") }.sorted()
        let files = mine.filter { view.file($0) != nil }
        let folders = ["a"] + mine.filter { view.nodes[$0] == .directory }
        func newPath() -> String { folders[random.below(folders.count)] + "/n\(random.below(8))" }
        let choice = random.below(14)
        lastOperation = ["create", "create", "create", "write", "write", "write", "truncate", "rename", "unlink", "mkdir/symlink", "rmdir", "chmod", "common", "common"][choice]
        switch choice {
        case 0, 1, 2:  // create or overwrite a file
            let path = newPath()
            guard view.nodes[path] == nil || view.file(path) != nil else { return [] }
            let bytes = someBytes()
            try await mount.overwrite(path, bytes)
            writers[index].view.nodes[path] = .file(bytes, mode: mode(of: path, in: view))
            return [path]
        case 3, 4, 5:  // write at an offset, possibly past the end
            guard !files.isEmpty else { return [] }
            return [try await writeAtOffset(index, files[random.below(files.count)])]
        case 6:
            guard !files.isEmpty else { return [] }
            return [try await truncate(index, files[random.below(files.count)])]
        case 7:  // rename anything to a free name, or a file over another file
            guard !mine.isEmpty else { return [] }
            let source = mine[random.below(mine.count)]
            var target = newPath()
            if view.file(source) != nil, !files.isEmpty, random.below(3) == 0 { target = files[random.below(files.count)] }
            guard source != target, !Tree.isWithin(target, source) else { return [] }
            guard view.nodes[target] == nil || (view.file(target) != nil && view.file(source) != nil) else { return [] }
            try await mount.rename(source, to: target)
            writers[index].view.nodes[target] = nil
            writers[index].view.move(source, to: target)
            return [source, target]
        case 8:  // remove a file or link
            let removable = mine.filter { view.nodes[$0] != .directory }
            guard !removable.isEmpty else { return [] }
            let path = removable[random.below(removable.count)]
            try await mount.unlink(path)
            writers[index].view.nodes[path] = nil
            return [path]
        case 9:  // make a directory or a symlink
            let path = newPath()
            guard view.nodes[path] == nil else { return [] }
            if random.below(2) == 0 {
                try await mount.mkdir(path)
                writers[index].view.nodes[path] = .directory
            } else {
                let target = "target-\(random.below(100))"
                try await mount.symlink(path, to: target)
                writers[index].view.nodes[path] = .link(target)
            }
            return [path]
        case 10:  // remove a directory: refused while it holds anything
            let candidates = folders.dropFirst()
            guard !candidates.isEmpty else { return [] }
            let path = candidates[candidates.startIndex + random.below(candidates.count)]
            do {
                try await mount.rmdir(path)
                if !view.children(path).isEmpty { record("A: rmdir of non-empty /\(path) succeeded") }
                writers[index].view.nodes[path] = nil
            } catch let error as SiloError where error.code == .directoryNotEmpty && !view.children(path).isEmpty {
            }
            return [path]
        case 11:
            guard !files.isEmpty else { return [] }
            return [try await changeMode(index, files[random.below(files.count)])]
        default:
            return [try await overwriteCommon(index)]
        }
    }

    /// One operation of writer B, on its own `shared/b-*` files or a common one.
    private func operateShared(_ index: Int) async throws -> [String] {
        let mount = writers[index].mount
        let view = writers[index].view
        let path = "shared/b-\(random.below(12))"
        let exists = view.file(path) != nil
        writers[index].dirty.insert(path)
        let choice = random.below(9)
        lastOperation = ["create", "create", "create", "write", "write", "truncate", "unlink", "chmod", "common"][choice]
        switch choice {
        case 0, 1, 2:
            let bytes = someBytes()
            try await mount.overwrite(path, bytes)
            writers[index].view.nodes[path] = .file(bytes, mode: mode(of: path, in: view))
            return [path]
        case 3, 4:
            return exists ? [try await writeAtOffset(index, path)] : []
        case 5:
            return exists ? [try await truncate(index, path)] : []
        case 6:
            guard exists else { return [] }
            try await mount.unlink(path)
            writers[index].view.nodes[path] = nil
            return [path]
        case 7:
            return exists ? [try await changeMode(index, path)] : []
        default:
            return [try await overwriteCommon(index)]
        }
    }

    private func mode(of path: String, in view: Tree) -> UInt32 {
        if case .file(_, let mode)? = view.nodes[path] { return mode }
        return 0o644
    }

    private func writeAtOffset(_ index: Int, _ path: String) async throws -> String {
        var bytes = writers[index].view.file(path)!
        let offset = random.below(bytes.count + 100)
        let data = pseudoRandomBytes(count: 1 + random.below(5000), seed: random.next())
        try await writers[index].mount.write(path, at: offset, data)
        if bytes.count < offset + data.count { bytes += [UInt8](repeating: 0, count: offset + data.count - bytes.count) }
        bytes.replaceSubrange(offset..<(offset + data.count), with: data)
        writers[index].view.nodes[path] = .file(bytes, mode: mode(of: path, in: writers[index].view))
        return path
    }

    private func truncate(_ index: Int, _ path: String) async throws -> String {
        var bytes = writers[index].view.file(path)!
        let size = random.below(bytes.count + 50)
        try await writers[index].mount.truncate(path, to: size)
        if size < bytes.count { bytes.removeLast(bytes.count - size) } else { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
        writers[index].view.nodes[path] = .file(bytes, mode: mode(of: path, in: writers[index].view))
        return path
    }

    private func changeMode(_ index: Int, _ path: String) async throws -> String {
        let mode: UInt32 = [0o600, 0o644, 0o640, 0o755][random.below(4)]
        try await writers[index].mount.chmod(path, mode)
        writers[index].view.nodes[path] = .file(writers[index].view.file(path)!, mode: mode)
        return path
    }

    /// Both writers overwrite the common files whole: the later commit wins.
    private func overwriteCommon(_ index: Int) async throws -> String {
        let path = "shared/common-\(random.below(4))"
        let bytes = someBytes()
        try await writers[index].mount.overwrite(path, bytes)
        writers[index].view.nodes[path] = .file(bytes, mode: mode(of: path, in: writers[index].view))
        writers[index].dirty.insert(path)
        return path
    }
}
