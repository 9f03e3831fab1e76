"""The sandbox: `make run` without a token, or `tsur-bot sandbox`: the bot against the built-in Bot API emulator, a
database of its own and a web chat at http://127.0.0.1:8080 for demos and staff training (runner.py)."""

# Made up: the sandbox's bot never reaches Telegram, whatever token the config holds.
SANDBOX_TOKEN = "100000001:SANDBOX-not-a-telegram-token"
