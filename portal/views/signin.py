"""Signing in with a link, and out.

Opening a link shows a page with one button; the session starts when it is pressed (a POST with the
CSRF token). Mail and chat scanners open every link they see: a GET that signed in would record their
visit as the tenant's and start sessions nobody asked for, and a page on another site could sign a
visitor into somebody else's portal by loading the link. A POST from our own page does neither.
"""

from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal import session
from portal.selectors import portal_link_for_token
from portal.services import portal_link_use


@never_cache
@require_http_methods(["GET", "POST"])
def signin_view(request, token):
    link = portal_link_for_token(token=token)
    if link is None:
        response = TemplateResponse(request, "portal/link_refused.html", {}, status=403)
    elif request.method == "POST":
        portal_link_use(link=link)
        session.sign_in(request, link)
        response = redirect("portal:tasks")
    else:
        response = TemplateResponse(request, "portal/signin.html", {"link": link, "tenant": link.tenant})
    # The token is in this page's address: it must never travel to another site in a Referer header.
    # Not "no-referrer": browsers then send "Origin: null" with the form, which CSRF checks refuse.
    response["Referrer-Policy"] = "same-origin"
    return response


@require_POST
def signout_view(request):
    session.sign_out(request)
    return redirect("portal:signed-out")


@never_cache
def signed_out_view(request):
    return TemplateResponse(request, "portal/signed_out.html", {})
