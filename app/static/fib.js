// The front page's form: asks /fib/<n> and shows the answer with the figures
// of its Server-Timing header. Same origin only; no inline script (the CSP).
"use strict";

function serverTiming(header) {
  // "app;dur=1.234, cpu;dur=0.987" -> {app: "1.234", cpu: "0.987"}
  const metrics = {};
  for (const part of (header || "").split(",")) {
    const [name, ...params] = part.trim().split(";");
    for (const param of params) {
      const [key, value] = param.trim().split("=");
      if (key === "dur") metrics[name] = value;
    }
  }
  return metrics;
}

async function compute(event) {
  event.preventDefault();
  const n = document.getElementById("n").value;
  const error = document.getElementById("error");
  const answer = document.getElementById("answer");
  error.hidden = true;
  const response = await fetch(`/fib/${encodeURIComponent(n)}`, {headers: {Accept: "application/json"}});
  const body = await response.json();
  if (!response.ok) {
    error.textContent = `${body.status} ${body.title}: ${body.detail}`;
    error.hidden = false;
    answer.hidden = true;
    return;
  }
  const timing = serverTiming(response.headers.get("Server-Timing"));
  document.getElementById("answer-n").textContent = body.n;
  document.getElementById("answer-digits").textContent = body.digits;
  document.getElementById("answer-value").textContent = body.value;
  document.getElementById("timing-app").textContent = timing.app ?? "?";
  document.getElementById("timing-cpu").textContent = timing.cpu ?? "?";
  document.getElementById("request-id").textContent = response.headers.get("X-Request-ID") ?? "";
  answer.hidden = false;
}

document.getElementById("fib-form").addEventListener("submit", compute);
