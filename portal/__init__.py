"""The tenant portal (/portal/): a tenant's own callbacks, schedules, whitelist, gone URLs and stats, reached
through a sign-in link an operator gives out. Never the admin, never another tenant's rows."""
