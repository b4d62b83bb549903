// The feed page's logic, in the seed's style: stompjs 2.3.3 (`Stomp.over(socket)`) over a native
// WebSocket (/ws) or SockJS (/stomp, optionally forced to one HTTP transport). It subscribes to
// /exchange/feed/<user>, lists every message, sends replies to /exchange/replies/<user>, and after a
// dropped connection reconnects with full-jitter exponential backoff. Plain browser JS, no build.
(function () {
  'use strict';

  const WS_PATH = '/ws';
  const SOCKJS_PATH = '/stomp';
  const SOCKJS_TRANSPORTS = ['xhr-streaming', 'xhr-polling', 'eventsource'];
  const HEARTBEAT_MS = 10000;
  // Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): wait a random time in
  // [0, min(cap, base * 2^attempt)], so a server restart is not met by every tab at the same instant.
  const BACKOFF_BASE_MS = 1000;
  const BACKOFF_CAP_MS = 30000;

  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const loginForm = $('login-form');
  const replyForm = $('reply-form');
  const stateEl = $('state');
  const params = new URLSearchParams(location.search);

  loginForm.user.value = params.get('user') || '';
  loginForm.password.value = params.get('password') || '';
  if (params.has('transport')) loginForm.transport.value = params.get('transport');

  let current = null; // { client, socket, user, connected } for the live attempt
  let wanted = null; // { user, password, transport } while the user wants to be connected
  let attempt = 0;
  let retryTimer = null;
  let connects = 0;
  let receiptSeq = 0;
  const onReceipt = new Map();

  function setState(state, detail) {
    stateEl.dataset.state = state;
    stateEl.textContent = state;
    $('detail').textContent = detail || '';
    const live = state === 'connected';
    replyForm.text.disabled = !live;
    replyForm.querySelector('button').disabled = !live;
    $('disconnect').disabled = wanted === null;
  }

  function openSocket(transport) {
    if (transport === 'websocket') {
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      return new WebSocket(`${scheme}//${location.host}${WS_PATH}`, ['v12.stomp', 'v11.stomp', 'v10.stomp']);
    }
    const options = SOCKJS_TRANSPORTS.includes(transport) ? { transports: [transport] } : {};
    return new SockJS(location.origin + SOCKJS_PATH, null, options);
  }

  function connect() {
    const { user, password, transport } = wanted;
    const socket = openSocket(transport);
    const client = Stomp.over(socket);
    client.heartbeat.outgoing = HEARTBEAT_MS;
    client.heartbeat.incoming = HEARTBEAT_MS;
    // stompjs logs every frame, CONNECT's passcode included, unless told otherwise.
    client.debug = params.has('debug') ? (m) => console.log(String(m).replace(/^passcode:.*$/m, 'passcode:***')) : null;
    client.onreceipt = (frame) => {
      const id = frame.headers['receipt-id'];
      const done = onReceipt.get(id);
      onReceipt.delete(id);
      if (done) done();
    };
    const me = { client, socket, user, connected: false, over: false };
    current = me;
    setState('connecting', transport === 'websocket' ? WS_PATH : `${SOCKJS_PATH} (${transport})`);
    client.connect(user, password, () => onConnected(me), (error) => onFailure(me, error), '/');
  }

  function onConnected(me) {
    if (me !== current) return;
    me.connected = true;
    attempt = 0;
    const destination = `/exchange/feed/${me.user}`;
    $('feed-destination').textContent = `for ${destination}`;
    const transport = me.socket instanceof WebSocket ? 'websocket' : me.socket.transport;
    $('transport').dataset.transport = transport;
    $('transport').textContent = `via ${me.socket instanceof WebSocket ? 'WebSocket' : 'SockJS ' + transport}`;
    // "connected" only once the subscription is in place: the server confirms it with a RECEIPT.
    const receipt = `sub-${++receiptSeq}`;
    onReceipt.set(receipt, () => {
      if (me !== current) return;
      connects += 1;
      stateEl.dataset.connects = String(connects);
      setState('connected');
    });
    me.client.subscribe(destination, (frame) => addItem('message', frame.body), { receipt });
  }

  // stompjs 2.3.3 calls the error callback for an ERROR frame and again when the socket closes.
  function onFailure(me, error) {
    if (me !== current || me.over) return;
    me.over = true;
    const wasConnected = me.connected;
    me.connected = false;
    const text = typeof error === 'string' ? error : [error.headers.message || 'ERROR', error.body.trim()].filter(Boolean).join(': ');
    if (typeof error !== 'string' && !wasConnected) {
      // Refused at CONNECT (wrong password, no access to the vhost): retrying cannot help.
      wanted = null;
      current = null;
      closeQuietly(me);
      setState('error', text);
      return;
    }
    closeQuietly(me);
    scheduleReconnect(text);
  }

  function backoffDelay(n, random) {
    return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n));
  }

  function scheduleReconnect(reason) {
    if (wanted === null) return;
    const delay = backoffDelay(attempt, Math.random);
    attempt += 1;
    setState('reconnecting', `${reason} — retry ${attempt} in ${(delay / 1000).toFixed(1)} s`);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      if (wanted !== null) connect();
    }, delay);
  }

  // stompjs's own close handler still runs (it stops its heart-beat timers); the error callback it
  // then makes is ignored, since `me` is over or no longer current.
  function closeQuietly(me) {
    try {
      me.socket.close();
    } catch (_) {
      // Already closed.
    }
  }

  function disconnect() {
    wanted = null;
    clearTimeout(retryTimer);
    retryTimer = null;
    const me = current;
    current = null;
    if (me) {
      if (me.client.connected) me.client.disconnect();
      else closeQuietly(me);
    }
    setState('disconnected');
  }

  function addItem(kind, body) {
    const li = document.createElement('li');
    li.className = kind;
    li.dataset.testid = kind;
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString();
    li.append(time, kind === 'reply' ? `you: ${body}` : body); // text nodes: a message is never HTML
    $('messages').prepend(li);
    return li;
  }

  loginForm.addEventListener('submit', (event) => {
    event.preventDefault();
    disconnect();
    wanted = { user: loginForm.user.value, password: loginForm.password.value, transport: loginForm.transport.value };
    attempt = 0;
    connect();
  });

  $('disconnect').addEventListener('click', disconnect);

  replyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = replyForm.text.value;
    if (!current || !current.connected || text === '') return;
    const receipt = `send-${++receiptSeq}`;
    const li = addItem('reply', text);
    onReceipt.set(receipt, () => {
      li.dataset.delivered = 'true';
    });
    current.client.send(`/exchange/replies/${current.user}`, { 'content-type': 'text/plain', receipt }, text);
    replyForm.text.value = '';
  });

  // For the browser console (and tests): the live stompjs client, its socket, the backoff formula.
  window.thumperFeed = {
    backoffDelay,
    get client() {
      return current && current.client;
    },
    get socket() {
      return current && current.socket;
    },
  };
})();
