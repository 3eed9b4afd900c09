const form = document.querySelector('#login');
const error = document.querySelector('#error');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  error.textContent = '';
  try {
    const res = await fetch('/admin/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: document.querySelector('#password').value }),
    });
    if (res.ok) {
      location.reload();
      return;
    }
    const body = await res.json().catch(() => ({}));
    error.textContent = body.error?.message ?? `login failed (HTTP ${res.status})`;
  } catch (err) {
    error.textContent = `cannot reach the server: ${err.message}`;
  }
});
