// A STOMP 1.2 client for iOS/macOS apps over URLSessionWebSocketTask: logs in to Thumper, subscribes
// to the user's feed (/exchange/feed/<user>) with client-individual acks, ACKs and hands each
// message to the app, sends replies to /exchange/replies/<user> and keeps the link alive with STOMP
// heart-beats.
//
// The frames below are written out literally, byte for byte: test/fixtures/wire/ios.json holds the
// same strings and test/e2e/client-examples.test.ts replays them against Thumper and checks that
// this file still contains them, so what is tested is what the app sends.

import Foundation

final class ThumperStompClient {
    /// Called on the main queue.
    var onConnected: ((_ version: String, _ heartBeat: String) -> Void)?
    var onSubscribed: (() -> Void)?
    var onMessage: ((_ destination: String, _ body: String) -> Void)?
    var onReplyConfirmed: ((_ receipt: String) -> Void)?
    /// An ERROR frame: its `message` header and body. The session is over.
    var onError: ((_ message: String, _ detail: String) -> Void)?
    var onClosed: ((_ reason: String) -> Void)?

    private struct Frame {
        let command: String
        let headers: [String: String]
        let body: Data
    }

    private let url: URL
    private let user: String
    /// The user's password, or a JWT from the auth service's POST /login.
    private let passcode: String
    private let session: URLSession
    /// All state lives on this queue; URLSession's callbacks hop onto it.
    private let queue = DispatchQueue(label: "thumper.stomp")
    private var task: URLSessionWebSocketTask?
    private var decoder = FrameDecoder()
    private var timers: [DispatchSourceTimer] = []
    private var lastWriteAt = DispatchTime.now()
    private var lastReadAt = DispatchTime.now()
    private var replySeq = 0
    private static let heartBeatMs: UInt64 = 10_000

    init(url: URL, user: String, passcode: String, session: URLSession = .shared) {
        self.url = url
        self.user = user
        self.passcode = passcode
        self.session = session
    }

    // MARK: The frames this app sends (STOMP 1.2)
    // Values are escaped by the callers (escapeHeader), except in CONNECT, which STOMP 1.2 leaves
    // unescaped.

    private func connectFrame(user: String, passcode: String) -> String {
        "CONNECT\naccept-version:1.2,1.1\nhost:/\nlogin:\(user)\npasscode:\(passcode)\nheart-beat:10000,10000\n\n\0"
    }

    private func subscribeFrame(user: String) -> String {
        "SUBSCRIBE\nid:feed\ndestination:/exchange/feed/\(user)\nack:client-individual\nreceipt:subscribed\n\n\0"
    }

    private func ackFrame(ack: String) -> String {
        "ACK\nid:\(ack)\n\n\0"
    }

    // No content-length: the body is text without NUL, so the NUL ends the frame.
    private func replyFrame(user: String, receipt: String, body: String) -> String {
        "SEND\ndestination:/exchange/replies/\(user)\ncontent-type:text/plain\nreceipt:\(receipt)\n\n\(body)\0"
    }

    private func disconnectFrame() -> String {
        "DISCONNECT\nreceipt:disconnect\n\n\0"
    }

    /// STOMP 1.2 §Heart-beating: a bare EOL between frames.
    private let heartBeat = "\n"

    // MARK: Session

    func connect() {
        queue.async {
            var request = URLRequest(url: self.url)
            // Set as is, so the bytes on the wire are known; Thumper echoes the highest offered.
            request.setValue("v12.stomp, v11.stomp", forHTTPHeaderField: "Sec-WebSocket-Protocol")
            let task = self.session.webSocketTask(with: request)
            self.task = task
            task.resume()
            self.receiveNext()
            // Sends queue up until the handshake is done.
            self.write(self.connectFrame(user: self.user, passcode: self.passcode))
        }
    }

    /// Sends `body` to /exchange/replies/<user>; onReplyConfirmed gets the receipt id.
    func reply(_ body: String) {
        precondition(!body.contains("\0"), "a reply body must not contain NUL")
        queue.async {
            self.replySeq += 1
            self.write(self.replyFrame(user: Self.escapeHeader(self.user), receipt: "reply-\(self.replySeq)", body: body))
        }
    }

    /// DISCONNECT with a receipt; the socket is closed when the RECEIPT arrives.
    func disconnect() {
        queue.async { self.write(self.disconnectFrame()) }
    }

    private func write(_ text: String) {
        lastWriteAt = .now()
        task?.send(.string(text)) { [weak self] error in
            if let error { self?.queue.async { self?.closed("send failed: \(error.localizedDescription)") } }
        }
    }

    private func receiveNext() {
        task?.receive { [weak self] result in
            guard let self else { return }
            self.queue.async {
                switch result {
                case .success(.string(let text)): self.received(Data(text.utf8))
                case .success(.data(let data)): self.received(data)
                case .success: break
                case .failure(let error):
                    self.closed(error.localizedDescription)
                    return
                }
                self.receiveNext()
            }
        }
    }

    private func received(_ data: Data) {
        lastReadAt = .now()
        do {
            for frame in try decoder.push(data) { handle(frame) }
        } catch {
            task?.cancel(with: .protocolError, reason: nil)
            closed("undecodable data: \(error)")
        }
    }

    private func handle(_ frame: Frame) {
        let text = String(decoding: frame.body, as: UTF8.self)
        switch frame.command {
        case "CONNECTED":
            let heartBeat = frame.headers["heart-beat"] ?? "0,0"
            startHeartBeats(heartBeat)
            let version = frame.headers["version"] ?? "1.0"
            DispatchQueue.main.async { self.onConnected?(version, heartBeat) }
            write(subscribeFrame(user: Self.escapeHeader(user)))
        case "MESSAGE":
            let destination = frame.headers["destination"] ?? ""
            DispatchQueue.main.async { self.onMessage?(destination, text) }
            // ack:client-individual: a message not ACKed before a disconnect is redelivered.
            if let ack = frame.headers["ack"] { write(ackFrame(ack: Self.escapeHeader(ack))) }
        case "RECEIPT":
            switch frame.headers["receipt-id"] ?? "" {
            case "subscribed": DispatchQueue.main.async { self.onSubscribed?() }
            case "disconnect": task?.cancel(with: .normalClosure, reason: nil)
            case let id: DispatchQueue.main.async { self.onReplyConfirmed?(id) }
            }
        case "ERROR":
            let message = frame.headers["message"] ?? "ERROR"
            DispatchQueue.main.async { self.onError?(message, text) }
        default:
            break
        }
    }

    /// Client 10000,10000 vs the server's sx,sy (STOMP 1.2 §Heart-beating): each side uses the max.
    private func startHeartBeats(_ serverHeader: String) {
        let parts = serverHeader.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
        let sx = parts.first ?? 0
        let sy = parts.count > 1 ? parts[1] : 0
        let sendMs = sy == 0 ? 0 : max(Self.heartBeatMs, sy)
        let receiveMs = sx == 0 ? 0 : max(Self.heartBeatMs, sx)
        if sendMs > 0 {
            // Checking at half the interval keeps every silence under sendMs.
            let half = sendMs / 2
            schedule(everyMs: half) { [weak self] in
                guard let self else { return }
                if Self.msSince(self.lastWriteAt) >= half { self.write(self.heartBeat) }
            }
        }
        if receiveMs > 0 {
            schedule(everyMs: receiveMs) { [weak self] in
                guard let self else { return }
                if Self.msSince(self.lastReadAt) > receiveMs * 2 {
                    self.task?.cancel(with: .goingAway, reason: nil)
                    self.closed("no heart-beat from the server")
                }
            }
        }
    }

    private func schedule(everyMs: UInt64, _ action: @escaping () -> Void) {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(Int(everyMs)), repeating: .milliseconds(Int(everyMs)))
        timer.setEventHandler(handler: action)
        timer.resume()
        timers.append(timer)
    }

    private func closed(_ reason: String) {
        guard task != nil else { return }
        task = nil
        timers.forEach { $0.cancel() }
        timers.removeAll()
        DispatchQueue.main.async { self.onClosed?(reason) }
    }

    private static func msSince(_ t: DispatchTime) -> UInt64 {
        (DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1_000_000
    }

    /// STOMP 1.2 §Value Encoding.
    static func escapeHeader(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "\r", with: "\\r")
            .replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: ":", with: "\\c")
    }

    static func unescapeHeader(_ value: String) throws -> String {
        guard value.contains("\\") else { return value }
        var out = ""
        var chars = value.makeIterator()
        while let c = chars.next() {
            guard c == "\\" else { out.append(c); continue }
            switch chars.next() {
            case "r"?: out.append("\r")
            case "n"?: out.append("\n")
            case "c"?: out.append(":")
            case "\\"?: out.append("\\")
            default: throw DecodeError.badEscape
            }
        }
        return out
    }

    enum DecodeError: Error {
        case badEscape, badHeader, missingNul
    }

    /// STOMP frames as a byte stream: a frame may span WebSocket messages and a message may hold
    /// several frames or heart-beat EOLs.
    private struct FrameDecoder {
        private var buffer: [UInt8] = []
        private static let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, nul: UInt8 = 0x00

        mutating func push(_ chunk: Data) throws -> [Frame] {
            buffer.append(contentsOf: chunk)
            var frames: [Frame] = []
            var pos = 0
            while true {
                while pos < buffer.count && (buffer[pos] == Self.lf || (buffer[pos] == Self.cr && pos + 1 < buffer.count && buffer[pos + 1] == Self.lf)) {
                    pos += buffer[pos] == Self.cr ? 2 : 1
                }
                guard let headEnd = blankLine(from: pos) else { break }
                let bodyStart = headEnd + (buffer[headEnd] == Self.cr ? 2 : 1)
                let head = String(decoding: buffer[pos..<headEnd], as: UTF8.self)
                let lines = head.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { throw DecodeError.badHeader }
                    let name = try ThumperStompClient.unescapeHeader(String(line[..<colon]))
                    // STOMP 1.2: the first of repeated headers wins.
                    if headers[name] == nil {
                        headers[name] = try ThumperStompClient.unescapeHeader(String(line[line.index(after: colon)...]))
                    }
                }
                let bodyEnd: Int
                if let length = headers["content-length"].flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                    bodyEnd = bodyStart + length
                } else {
                    guard let nul = buffer[bodyStart...].firstIndex(of: Self.nul) else { break }
                    bodyEnd = nul
                }
                guard bodyEnd < buffer.count else { break }
                guard buffer[bodyEnd] == Self.nul else { throw DecodeError.missingNul }
                frames.append(Frame(command: lines.first.map(String.init) ?? "", headers: headers, body: Data(buffer[bodyStart..<bodyEnd])))
                pos = bodyEnd + 1
            }
            buffer.removeFirst(pos)
            return frames
        }

        private func blankLine(from: Int) -> Int? {
            var i = from
            while i < buffer.count {
                if buffer[i] == Self.lf {
                    if i + 1 < buffer.count && buffer[i + 1] == Self.lf { return i + 1 }
                    if i + 2 < buffer.count && buffer[i + 1] == Self.cr && buffer[i + 2] == Self.lf { return i + 1 }
                }
                i += 1
            }
            return nil
        }
    }
}
