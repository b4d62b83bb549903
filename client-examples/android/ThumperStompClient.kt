// A STOMP 1.2 client for Android apps over OkHttp's WebSocket: logs in to Thumper, subscribes to the
// user's feed (/exchange/feed/<user>) with client-individual acks, ACKs and hands each message to
// the app, sends replies to /exchange/replies/<user> and keeps the link alive with STOMP heart-beats.
//
// The frames below are written out literally, byte for byte: test/fixtures/wire/android.json holds
// the same strings and test/e2e/client-examples.test.ts replays them against Thumper and checks that
// this file still contains them, so what is tested is what the app sends.

package dev.thumper.example

import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.TimeUnit
import okhttp3.OkHttpClient
import okhttp3.Request
import okhttp3.Response
import okhttp3.WebSocket
import okhttp3.WebSocketListener
import okio.ByteString

class ThumperStompClient(
    private val url: String,
    private val user: String,
    /** The user's password, or a JWT from the auth service's POST /login. */
    private val passcode: String,
    private val listener: Listener,
    private val http: OkHttpClient = OkHttpClient(),
) {
    /** Called on OkHttp's reader thread; post to the main thread before touching views. */
    interface Listener {
        fun onConnected(version: String, heartBeat: String) {}
        fun onSubscribed() {}
        fun onMessage(destination: String, body: String)
        fun onReplyConfirmed(receipt: String) {}
        /** An ERROR frame: its `message` header and body. The session is over. */
        fun onError(message: String, detail: String)
        fun onClosed(reason: String) {}
    }

    private class Frame(val command: String, val headers: Map<String, String>, val body: ByteArray)

    private var socket: WebSocket? = null
    private val decoder = FrameDecoder()
    private val timers: ScheduledExecutorService = Executors.newSingleThreadScheduledExecutor()
    @Volatile private var lastWriteAt = System.nanoTime()
    @Volatile private var lastReadAt = System.nanoTime()
    private var replySeq = 0

    // ---------------------------------------------------------------------------------------------
    // The frames this app sends (STOMP 1.2). Values are escaped by the callers (escapeHeader), except
    // in CONNECT, which STOMP 1.2 leaves unescaped.

    private fun connectFrame(user: String, passcode: String) =
        "CONNECT\naccept-version:1.2,1.1\nhost:/\nlogin:${user}\npasscode:${passcode}\nheart-beat:10000,10000\n\n\u0000"

    private fun subscribeFrame(user: String) =
        "SUBSCRIBE\nid:feed\ndestination:/exchange/feed/${user}\nack:client-individual\nreceipt:subscribed\n\n\u0000"

    private fun ackFrame(ack: String) =
        "ACK\nid:${ack}\n\n\u0000"

    // No content-length: the body is text without NUL, so the NUL ends the frame.
    private fun replyFrame(user: String, receipt: String, body: String) =
        "SEND\ndestination:/exchange/replies/${user}\ncontent-type:text/plain\nreceipt:${receipt}\n\n${body}\u0000"

    private fun disconnectFrame() =
        "DISCONNECT\nreceipt:disconnect\n\n\u0000"

    /** STOMP 1.2 §Heart-beating: a bare EOL between frames. */
    private val heartBeat = "\n"

    // ---------------------------------------------------------------------------------------------

    fun connect() {
        val request = Request.Builder()
            .url(url)
            // OkHttp has no subprotocol API: the header is set as is. Thumper echoes the highest
            // offered (v12.stomp).
            .header("Sec-WebSocket-Protocol", "v12.stomp, v11.stomp")
            .build()
        socket = http.newWebSocket(request, object : WebSocketListener() {
            override fun onOpen(webSocket: WebSocket, response: Response) {
                write(connectFrame(user, passcode))
            }

            override fun onMessage(webSocket: WebSocket, text: String) = received(text.toByteArray(Charsets.UTF_8))

            override fun onMessage(webSocket: WebSocket, bytes: ByteString) = received(bytes.toByteArray())

            override fun onClosed(webSocket: WebSocket, code: Int, reason: String) = closed("closed: $code $reason")

            override fun onFailure(webSocket: WebSocket, t: Throwable, response: Response?) = closed("failed: ${t.message}")
        })
    }

    /** Sends `body` to /exchange/replies/<user>; onReplyConfirmed gets the receipt id. */
    fun reply(body: String) {
        require(!body.contains('\u0000')) { "a reply body must not contain NUL" }
        replySeq += 1
        write(replyFrame(escapeHeader(user), "reply-$replySeq", body))
    }

    /** DISCONNECT with a receipt; the socket is closed when the RECEIPT arrives. */
    fun disconnect() = write(disconnectFrame())

    private fun write(text: String) {
        lastWriteAt = System.nanoTime()
        socket?.send(text)
    }

    private fun received(bytes: ByteArray) {
        lastReadAt = System.nanoTime()
        val frames = try {
            decoder.push(bytes)
        } catch (e: IllegalStateException) {
            socket?.cancel()
            closed("undecodable data: ${e.message}")
            return
        }
        frames.forEach(::handle)
    }

    private fun handle(frame: Frame) {
        when (frame.command) {
            "CONNECTED" -> {
                val heartBeat = frame.headers["heart-beat"] ?: "0,0"
                startHeartBeats(heartBeat)
                listener.onConnected(frame.headers["version"] ?: "1.0", heartBeat)
                write(subscribeFrame(escapeHeader(user)))
            }
            "MESSAGE" -> {
                listener.onMessage(frame.headers["destination"] ?: "", frame.body.toString(Charsets.UTF_8))
                // ack:client-individual: a message not ACKed before a disconnect is redelivered.
                frame.headers["ack"]?.let { write(ackFrame(escapeHeader(it))) }
            }
            "RECEIPT" -> when (val id = frame.headers["receipt-id"] ?: "") {
                "subscribed" -> listener.onSubscribed()
                "disconnect" -> socket?.close(1000, "bye")
                else -> listener.onReplyConfirmed(id)
            }
            "ERROR" -> listener.onError(frame.headers["message"] ?: "ERROR", frame.body.toString(Charsets.UTF_8))
        }
    }

    /** Client 10000,10000 vs the server's sx,sy (STOMP 1.2 §Heart-beating): each side uses the max. */
    private fun startHeartBeats(serverHeader: String) {
        val (sx, sy) = serverHeader.split(",").map { it.trim().toLongOrNull() ?: 0L } + listOf(0L, 0L)
        val sendMs = if (sy == 0L) 0L else maxOf(HEART_BEAT_MS, sy)
        val receiveMs = if (sx == 0L) 0L else maxOf(HEART_BEAT_MS, sx)
        if (sendMs > 0) {
            // Checking at half the interval keeps every silence under sendMs.
            val half = sendMs / 2
            timers.scheduleAtFixedRate({ if (sinceMs(lastWriteAt) >= half) write(heartBeat) }, half, half, TimeUnit.MILLISECONDS)
        }
        if (receiveMs > 0) {
            timers.scheduleAtFixedRate({
                if (sinceMs(lastReadAt) > receiveMs * 2) {
                    socket?.cancel()
                    closed("no heart-beat from the server")
                }
            }, receiveMs, receiveMs, TimeUnit.MILLISECONDS)
        }
    }

    private fun closed(reason: String) {
        timers.shutdownNow()
        listener.onClosed(reason)
    }

    private fun sinceMs(nanos: Long) = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - nanos)

    /**
     * STOMP frames as a byte stream: a frame may span WebSocket messages and a message may hold
     * several frames or heart-beat EOLs.
     */
    private class FrameDecoder {
        private var buffer = ByteArray(0)

        fun push(chunk: ByteArray): List<Frame> {
            buffer += chunk
            val frames = mutableListOf<Frame>()
            var pos = 0
            while (true) {
                while (pos < buffer.size && (buffer[pos] == LF || (buffer[pos] == CR && pos + 1 < buffer.size && buffer[pos + 1] == LF))) {
                    pos += if (buffer[pos] == CR) 2 else 1
                }
                val headEnd = blankLine(pos)
                if (headEnd < 0) break
                val bodyStart = headEnd + if (buffer[headEnd] == CR) 2 else 1
                val lines = String(buffer, pos, headEnd - pos, Charsets.UTF_8).split(Regex("\r?\n")).filter { it.isNotEmpty() }
                val headers = LinkedHashMap<String, String>()
                for (line in lines.drop(1)) {
                    val colon = line.indexOf(':')
                    check(colon >= 0) { "header without ':'" }
                    val name = unescapeHeader(line.substring(0, colon))
                    // STOMP 1.2: the first of repeated headers wins.
                    if (name !in headers) headers[name] = unescapeHeader(line.substring(colon + 1))
                }
                val length = headers["content-length"]?.trim()?.toInt()
                val bodyEnd = if (length != null) bodyStart + length else indexOfNul(bodyStart)
                if (bodyEnd < 0 || bodyEnd >= buffer.size) break
                check(buffer[bodyEnd] == NUL) { "frame body not followed by NUL" }
                frames += Frame(lines.firstOrNull() ?: "", headers, buffer.copyOfRange(bodyStart, bodyEnd))
                pos = bodyEnd + 1
            }
            buffer = buffer.copyOfRange(pos, buffer.size)
            return frames
        }

        private fun blankLine(from: Int): Int {
            for (i in from until buffer.size) {
                if (buffer[i] != LF) continue
                if (i + 1 < buffer.size && buffer[i + 1] == LF) return i + 1
                if (i + 2 < buffer.size && buffer[i + 1] == CR && buffer[i + 2] == LF) return i + 1
            }
            return -1
        }

        private fun indexOfNul(from: Int): Int {
            for (i in from until buffer.size) if (buffer[i] == NUL) return i
            return -1
        }
    }

    companion object {
        private const val HEART_BEAT_MS = 10_000L
        private const val LF: Byte = 0x0A
        private const val CR: Byte = 0x0D
        private const val NUL: Byte = 0x00

        /** STOMP 1.2 §Value Encoding. */
        fun escapeHeader(value: String): String =
            value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c")

        fun unescapeHeader(value: String): String {
            if (!value.contains('\\')) return value
            val out = StringBuilder(value.length)
            var i = 0
            while (i < value.length) {
                val c = value[i]
                if (c == '\\' && i + 1 < value.length) {
                    out.append(
                        when (value[i + 1]) {
                            'r' -> '\r'
                            'n' -> '\n'
                            'c' -> ':'
                            '\\' -> '\\'
                            else -> throw IllegalStateException("undefined escape")
                        },
                    )
                    i += 2
                } else {
                    out.append(c)
                    i += 1
                }
            }
            return out.toString()
        }
    }
}
