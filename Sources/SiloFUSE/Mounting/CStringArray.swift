#if canImport(Glibc)
import Glibc
#endif

/// NUL-terminated copies of strings in the NULL-terminated form exec and posix_spawn take for argv
/// and envp; freed when the array goes, so use them inside ``withPointers(_:)`` only.
public final class CStringArray {
    private let pointers: [UnsafeMutablePointer<CChar>?]

    public init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    /// `KEY=VALUE` strings.
    public convenience init(environment: [String: String]) {
        self.init(environment.map { "\($0.key)=\($0.value)" })
    }

    /// Calls `body` with the pointers, keeping them alive until it returns.
    public func withPointers<R>(_ body: ([UnsafeMutablePointer<CChar>?]) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(pointers) }
    }

    deinit {
        for pointer in pointers { free(pointer) }
    }
}
