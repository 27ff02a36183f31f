"""The portal's pages, one module per part: signing in, callbacks, the tenant's set-up, stats."""
