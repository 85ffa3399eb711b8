"""The compliance officers' web console: server-rendered pages over the hub, under /console.

`officers` keeps the accounts, `sessions` the signed session cookie and CSRF tokens,
`lookup` finds participants, `reports` reads what the pages show, and `routes` is the
thin HTTP layer that renders the templates.
"""
