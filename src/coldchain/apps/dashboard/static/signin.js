"use strict";
// Sign in with JSON from this page (the server takes no form posts): sets the session cookie.
const form = document.querySelector("#signin");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.querySelector("#error");
  error.textContent = "";
  try {
    const response = await fetch("/api/session", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: form.elements.name.value, password: form.elements.password.value }),
    });
    if (response.ok) { location.assign("/"); return; }
    const body = await response.json().catch(() => ({}));
    error.textContent = body.error || response.statusText;
  } catch (e) {
    error.textContent = e.message;
  }
});
