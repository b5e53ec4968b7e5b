"""The web dashboard, served by the admin app on the admin port.

Pages (server-rendered with Jinja2, a little plain JavaScript, no front-end build):
Overview, Chargers (live), a charger's page with its actions, Transactions,
Authorizations, Roaming and Locations. Logins and CSRF: :mod:`.auth`; live updates:
:mod:`.live`; what the pages show: :mod:`.views`; roaming data arrives through the
:class:`.ports.RoamingView` the composition root puts in the admin context.
"""
