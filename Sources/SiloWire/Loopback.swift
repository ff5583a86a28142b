/// Whether `host` names this machine (`localhost`, `127.x.x.x`, `::1`, bracketed or not): traffic to
/// it never crosses a network. The client refuses plain HTTP to any other host; the server warns when
/// it listens on one without TLS.
public func isLoopbackHost(_ host: String) -> Bool {
    let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
}
