// A STOMP 1.2 client for the JVM with nothing but the JDK (Java 17, java.net.http.WebSocket): logs in
// to Thumper, subscribes to the user's feed (/exchange/feed/<user>), prints each message body,
// answers it on /exchange/replies/<user> and leaves after N confirmed replies.
//
//   javac -d out StompClient.java && java -cp out StompClient ws://127.0.0.1:15674/ws user_x user_x-secret [count]
//
// The WebSocket carries a byte stream of STOMP frames, not one frame per message: a frame may be
// split across WebSocket messages and one message may hold several frames or bare EOL heart-beats,
// so everything received goes through FrameDecoder, a small byte state machine.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

public final class StompClient {

    /** What we offer: we can send every 10 s and want to hear from the server every 10 s. */
    private static final int HEART_BEAT_MS = 10_000;
    /** A peer silent for this many heart-beat intervals is taken as gone (as Thumper does). */
    private static final int HEART_BEAT_TOLERANCE = 2;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    /** Bound on waiting for CONNECTED and for each RECEIPT. */
    private static final long REPLY_TIMEOUT_MS = 10_000;

    /** A decoded STOMP frame; the first occurrence of a repeated header wins (STOMP 1.2). */
    record Frame(String command, Map<String, String> headers, byte[] body) {
        String header(String name) {
            return headers.get(name);
        }

        String bodyText() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    /** Something the WebSocket listener hands to the main thread. */
    sealed interface Event permits Received, Closed {}

    record Received(Frame frame) implements Event {}

    record Closed(String why) implements Event {}

    // -------------------------------------------------------------------------------------------
    // Decoding: bytes in, frames out, whatever the chunking.

    /** STOMP 1.2 streaming decoder (STOMP 1.2 §Augmented BNF). */
    static final class FrameDecoder {
        private byte[] buf = new byte[0];
        private int len = 0;

        /** Appends a chunk and returns every frame it completes; heart-beat EOLs are skipped. */
        List<Frame> push(byte[] chunk) {
            if (len + chunk.length > buf.length) {
                byte[] bigger = new byte[Math.max(buf.length * 2, len + chunk.length)];
                System.arraycopy(buf, 0, bigger, 0, len);
                buf = bigger;
            }
            System.arraycopy(chunk, 0, buf, len, chunk.length);
            len += chunk.length;
            List<Frame> frames = new ArrayList<>();
            int pos = 0;
            while (true) {
                // EOLs between frames are heart-beats (STOMP 1.2 §Heart-beating).
                while (pos < len && (buf[pos] == '\n' || (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n'))) {
                    pos += buf[pos] == '\r' ? 2 : 1;
                }
                int headEnd = indexOfBlankLine(pos);
                if (headEnd < 0) break;
                int bodyStart = headEnd + (buf[headEnd] == '\r' ? 2 : 1);
                Frame head = parseHead(new String(buf, pos, headEnd - pos, StandardCharsets.UTF_8));
                String lengthHeader = head.header("content-length");
                int bodyEnd;
                if (lengthHeader != null) {
                    // content-length counts bytes; the body may then hold NULs (STOMP 1.2 §Header content-length).
                    bodyEnd = bodyStart + Integer.parseInt(lengthHeader.trim());
                    if (len <= bodyEnd) break;
                    if (buf[bodyEnd] != 0) throw new IllegalStateException("frame body not followed by NUL");
                } else {
                    bodyEnd = indexOf((byte) 0, bodyStart);
                    if (bodyEnd < 0) break;
                }
                byte[] body = new byte[bodyEnd - bodyStart];
                System.arraycopy(buf, bodyStart, body, 0, body.length);
                frames.add(new Frame(head.command(), head.headers(), body));
                pos = bodyEnd + 1;
            }
            System.arraycopy(buf, pos, buf, 0, len - pos);
            len -= pos;
            return frames;
        }

        /** Index of the EOL that ends the header block (the one before the blank line), or -1. */
        private int indexOfBlankLine(int from) {
            for (int i = from; i < len; i++) {
                if (buf[i] != '\n') continue;
                int next = i + 1;
                if (next < len && buf[next] == '\n') return next;
                if (next + 1 < len && buf[next] == '\r' && buf[next + 1] == '\n') return next;
            }
            return -1;
        }

        private int indexOf(byte b, int from) {
            for (int i = from; i < len; i++) if (buf[i] == b) return i;
            return -1;
        }

        private static Frame parseHead(String head) {
            String[] lines = head.split("\r?\n", -1);
            Map<String, String> headers = new LinkedHashMap<>();
            for (int i = 1; i < lines.length; i++) {
                String line = lines[i];
                if (line.isEmpty()) continue;
                int colon = line.indexOf(':');
                if (colon < 0) throw new IllegalStateException("header line without ':': " + line);
                headers.putIfAbsent(unescape(line.substring(0, colon)), unescape(line.substring(colon + 1)));
            }
            return new Frame(lines[0], headers, new byte[0]);
        }

        /** STOMP 1.2 §Value Encoding: \r \n \c \\ are the only escapes. */
        private static String unescape(String s) {
            if (s.indexOf('\\') < 0) return s;
            StringBuilder out = new StringBuilder(s.length());
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if (c != '\\' || i + 1 == s.length()) {
                    out.append(c);
                    continue;
                }
                char e = s.charAt(++i);
                switch (e) {
                    case 'r' -> out.append('\r');
                    case 'n' -> out.append('\n');
                    case 'c' -> out.append(':');
                    case '\\' -> out.append('\\');
                    default -> throw new IllegalStateException("undefined escape \\" + e);
                }
            }
            return out.toString();
        }
    }

    // -------------------------------------------------------------------------------------------
    // Encoding

    /** STOMP 1.2 §Value Encoding; CONNECT headers are sent as they are. */
    static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n").replace(":", "\\c");
    }

    /** Headers in the order given: name, value, name, value, … */
    static Map<String, String> headers(String... namesAndValues) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int i = 0; i + 1 < namesAndValues.length; i += 2) out.put(namesAndValues[i], namesAndValues[i + 1]);
        return out;
    }

    static String frame(String command, Map<String, String> headers, String body) {
        boolean escaped = !command.equals("CONNECT");
        StringBuilder out = new StringBuilder(command).append('\n');
        for (Map.Entry<String, String> h : headers.entrySet()) {
            out.append(escaped ? escape(h.getKey()) : h.getKey()).append(':').append(escaped ? escape(h.getValue()) : h.getValue()).append('\n');
        }
        if (!body.isEmpty()) out.append("content-length:").append(body.getBytes(StandardCharsets.UTF_8).length).append('\n');
        return out.append('\n').append(body).append('\0').toString();
    }

    // -------------------------------------------------------------------------------------------
    // The session

    private final URI uri;
    private final String user;
    private final String passcode;
    private final int count;
    private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private final FrameDecoder decoder = new FrameDecoder();
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "stomp-heart-beat");
        t.setDaemon(true);
        return t;
    });
    private WebSocket ws;
    /** java.net.http.WebSocket allows one outstanding send: each send waits for the previous one. */
    private CompletableFuture<WebSocket> sending = CompletableFuture.completedFuture(null);
    private volatile long lastWriteAt = System.nanoTime();
    private volatile long lastReadAt = System.nanoTime();

    StompClient(URI uri, String user, String passcode, int count) {
        this.uri = uri;
        this.user = user;
        this.passcode = passcode;
        this.count = count;
    }

    /** The WebSocket side: decodes on the HTTP client's thread, hands frames to the main thread. */
    private final class Listener implements WebSocket.Listener {
        private final StringBuilder text = new StringBuilder();

        @Override
        public CompletionStage<?> onText(WebSocket socket, CharSequence data, boolean last) {
            // A text message may arrive in parts; encode it only when whole, so a character split
            // between two parts is never mangled.
            text.append(data);
            if (last) {
                byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
                text.setLength(0);
                received(bytes);
            }
            socket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onBinary(WebSocket socket, ByteBuffer data, boolean last) {
            byte[] bytes = new byte[data.remaining()];
            data.get(bytes);
            received(bytes);
            socket.request(1);
            return null;
        }

        @Override
        public CompletionStage<?> onClose(WebSocket socket, int statusCode, String reason) {
            events.add(new Closed("closed by the server: " + statusCode + " " + reason));
            return null;
        }

        @Override
        public void onError(WebSocket socket, Throwable error) {
            events.add(new Closed("WebSocket error: " + error));
        }

        private void received(byte[] bytes) {
            lastReadAt = System.nanoTime();
            try {
                for (Frame f : decoder.push(bytes)) events.add(new Received(f));
            } catch (RuntimeException e) {
                events.add(new Closed("undecodable data from the server: " + e.getMessage()));
            }
        }
    }

    private synchronized void send(String data) {
        sending = sending.thenCompose(s -> ws.sendText(data, true));
        sending.whenComplete((s, error) -> {
            if (error != null) events.add(new Closed("send failed: " + error));
        });
        lastWriteAt = System.nanoTime();
    }

    private void send(String command, Map<String, String> headers, String body) {
        send(frame(command, headers, body));
    }

    /** The next frame; fails the session on ERROR, on close, or after `timeoutMs` (0 = no limit). */
    private Frame next(long timeoutMs, String waitingFor) throws InterruptedException {
        Event event = timeoutMs > 0 ? events.poll(timeoutMs, TimeUnit.MILLISECONDS) : events.take();
        if (event == null) throw new SessionFailed("no " + waitingFor + " within " + timeoutMs + " ms");
        if (event instanceof Closed closed) throw new SessionFailed(closed.why());
        Frame f = ((Received) event).frame();
        if (f.command().equals("ERROR")) {
            String body = f.bodyText().strip();
            throw new SessionFailed("ERROR from the server: " + f.header("message") + (body.isEmpty() ? "" : "\n" + body));
        }
        return f;
    }

    private Frame awaitReceipt(String id) throws InterruptedException {
        while (true) {
            Frame f = next(REPLY_TIMEOUT_MS, "RECEIPT " + id);
            if (f.command().equals("RECEIPT") && id.equals(f.header("receipt-id"))) return f;
        }
    }

    /**
     * The DISCONNECT's RECEIPT (true: the socket is still ours to close) or the server closing the
     * socket (false): RabbitMQ's Web-STOMP 3.x closes before its RECEIPT is written
     * (rabbitmq-server#6737), and after a DISCONNECT that is as good as the RECEIPT.
     */
    private boolean awaitDisconnected(String receipt) throws InterruptedException {
        while (true) {
            Event event = events.poll(REPLY_TIMEOUT_MS, TimeUnit.MILLISECONDS);
            if (event == null) throw new SessionFailed("no RECEIPT " + receipt + " within " + REPLY_TIMEOUT_MS + " ms");
            if (event instanceof Closed) return false;
            Frame f = ((Received) event).frame();
            if (f.command().equals("RECEIPT") && receipt.equals(f.header("receipt-id"))) return true;
        }
    }

    /**
     * Our half of the closing handshake. The server closes right behind its RECEIPT, and once the
     * JDK has seen that close it answers it and closes our output itself: then there is nothing
     * left to do, and a failed sendClose means the same.
     */
    private void closeQuietly() throws InterruptedException {
        CompletableFuture<WebSocket> closing;
        synchronized (this) {
            if (ws.isOutputClosed()) return;
            closing = sending.thenCompose(s -> ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye"));
            sending = closing;
        }
        try {
            closing.get(REPLY_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            // Closed under us: the session is over either way.
        }
    }

    static final class SessionFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        SessionFailed(String message) {
            super(message);
        }
    }

    /** Client `cx,cy` vs server `sx,sy` (STOMP 1.2 §Heart-beating): both sides use the max. */
    private void startHeartBeats(String serverHeader) {
        String[] parts = serverHeader == null ? new String[] {"0", "0"} : serverHeader.split(",");
        long sx = Long.parseLong(parts[0].trim());
        long sy = parts.length > 1 ? Long.parseLong(parts[1].trim()) : 0;
        long sendMs = sy == 0 ? 0 : Math.max(HEART_BEAT_MS, sy);
        long receiveMs = sx == 0 ? 0 : Math.max(HEART_BEAT_MS, sx);
        if (sendMs > 0) {
            // Checking at half the interval keeps every silence under sendMs.
            long half = sendMs / 2;
            timers.scheduleAtFixedRate(() -> {
                if (elapsedMs(lastWriteAt) >= half) send("\n");
            }, half, half, TimeUnit.MILLISECONDS);
        }
        if (receiveMs > 0) {
            timers.scheduleAtFixedRate(() -> {
                long silent = elapsedMs(lastReadAt);
                if (silent > receiveMs * HEART_BEAT_TOLERANCE) events.add(new Closed("no heart-beat from the server for " + silent + " ms"));
            }, receiveMs, receiveMs, TimeUnit.MILLISECONDS);
        }
    }

    private static long elapsedMs(long since) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - since);
    }

    private void run() throws Exception {
        ws = HttpClient.newBuilder().connectTimeout(CONNECT_TIMEOUT).build()
            .newWebSocketBuilder()
            .subprotocols("v12.stomp")
            .buildAsync(uri, new Listener())
            .get(CONNECT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);

        String heartBeat = HEART_BEAT_MS + "," + HEART_BEAT_MS;
        send("CONNECT", headers("accept-version", "1.2", "host", "/", "login", user, "passcode", passcode, "heart-beat", heartBeat), "");
        Frame connected = next(REPLY_TIMEOUT_MS, "CONNECTED");
        if (!connected.command().equals("CONNECTED")) throw new SessionFailed("expected CONNECTED, got " + connected.command());
        System.out.println("connected to " + uri + " as " + user + " (STOMP " + connected.header("version") + ", heart-beat " + connected.header("heart-beat") + ")");
        startHeartBeats(connected.header("heart-beat"));

        String feed = "/exchange/feed/" + user;
        String replies = "/exchange/replies/" + user;
        send("SUBSCRIBE", headers("id", "feed", "destination", feed, "ack", "auto", "receipt", "subscribed"), "");
        awaitReceipt("subscribed");
        System.out.println("subscribed to " + feed);

        int received = 0;
        int confirmed = 0;
        while (confirmed < count) {
            // No time limit here: messages come when the backend publishes; heart-beats watch the link.
            Frame f = next(0, "MESSAGE");
            if (f.command().equals("MESSAGE") && received < count) {
                received++;
                String body = f.bodyText();
                System.out.println("message " + received + " on " + f.header("destination") + ": " + body);
                send("SEND", headers("destination", replies, "content-type", "text/plain", "receipt", "reply-" + received), "re: " + body);
            } else if (f.command().equals("RECEIPT") && f.header("receipt-id") != null && f.header("receipt-id").startsWith("reply-")) {
                confirmed++;
                System.out.println("replied on " + replies + " (RECEIPT " + f.header("receipt-id") + ")");
            }
        }

        send("DISCONNECT", headers("receipt", "bye"), "");
        timers.shutdownNow();
        if (awaitDisconnected("bye")) closeQuietly();
        System.out.println("disconnected after " + confirmed + " repl" + (confirmed == 1 ? "y" : "ies"));
    }

    public static void main(String[] args) {
        // Message bodies are UTF-8; Java 17 would print them in the platform charset.
        System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
        if (args.length < 3) {
            System.err.println("usage: java -cp out StompClient <ws-url> <user> <password> [count]");
            System.exit(2);
        }
        int count = 1;
        try {
            if (args.length > 3) count = Integer.parseInt(args[3]);
        } catch (NumberFormatException e) {
            count = 0;
        }
        if (count < 1) {
            System.err.println("count must be a whole number of at least 1, got " + args[3]);
            System.exit(2);
        }
        StompClient client = new StompClient(URI.create(args[0]), args[1], args[2], count);
        try {
            client.run();
            System.exit(0);
        } catch (SessionFailed e) {
            System.err.println(e.getMessage());
        } catch (Exception e) {
            System.err.println("failed: " + e);
        }
        System.exit(1);
    }
}
