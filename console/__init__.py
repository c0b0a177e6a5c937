"""The officers' console (工作台): a Chinese web application in its own process that talks to the
four services only through their HTTP APIs, with the logged-in user's token."""
