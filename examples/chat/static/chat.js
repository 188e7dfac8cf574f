// Kettle chat: one WebSocket to /ws on the host that served the page. Each line typed is
// sent as a text message; the server broadcasts it to every open page (this one included)
// as JSON: {"kind":"message","from":ID,"name":NAME,"text":TEXT}, and announces arrivals and
// departures as {"kind":"join"|"leave","from":ID,"name":NAME}. The first message a page gets
// is {"kind":"welcome","id":ID,"name":NAME,"online":[NAMES]}.
//
// `?name=alice` picks the name shown to others (the server assigns "user-N" otherwise).
// `?autotest=1` is for tests/chat_browser.rs: the page says "hello from chromium" once it is
// connected and "hello NAME" to everyone who joins after it, and answers every message from
// someone else with "browser saw: <the line it shows>", unless that message is itself such
// an answer.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const autotest = params.get("autotest") === "1";
  const list = document.getElementById("messages");
  const form = document.getElementById("form");
  const input = document.getElementById("input");
  const status = document.getElementById("status");

  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  if (params.has("name")) url.searchParams.set("name", params.get("name"));

  let myId = null;
  const ws = new WebSocket(url);

  // Appends one line to the list (as text: nothing a peer sends becomes markup).
  function show(text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.appendChild(li);
    if (atBottom) list.scrollTop = list.scrollHeight;
    return li;
  }

  ws.addEventListener("open", () => {
    input.disabled = false;
    input.focus();
    if (autotest) ws.send("hello from chromium");
  });

  ws.addEventListener("message", (ev) => {
    let e;
    try {
      e = JSON.parse(ev.data);
    } catch (err) {
      return;
    }
    switch (e.kind) {
      case "welcome":
        myId = e.id;
        status.textContent = "connected as " + e.name + " \u2014 online: " + e.online.join(", ");
        document.title = e.name + " \u2014 Kettle chat";
        break;
      case "join":
        show("* " + e.name + " joined", "notice");
        if (autotest && e.from !== myId) ws.send("hello " + e.name);
        break;
      case "leave":
        show("* " + e.name + " left", "notice");
        break;
      case "message": {
        const mine = e.from === myId;
        const li = show(e.name + ": " + e.text, mine ? "mine" : "");
        if (autotest && !mine && !e.text.startsWith("browser saw: ")) {
          ws.send("browser saw: " + li.textContent);
        }
        break;
      }
    }
  });

  ws.addEventListener("close", (ev) => {
    input.disabled = true;
    status.textContent = "disconnected (" + ev.code + (ev.reason ? ": " + ev.reason : "") + ")";
  });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (text === "" || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    input.value = "";
  });
})();
