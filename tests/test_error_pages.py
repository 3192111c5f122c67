"""The product's own error pages (templates/403.html, 403_csrf.html, 404.html, 500.html) as
billing staff meet them in production (DEBUG=False): plain words, a way back Home, nothing of
Django's or Python's."""

import pytest
from django.core.exceptions import PermissionDenied
from django.template import loader
from django.test import Client, override_settings
from django.urls import path, reverse

from config import urls as project_urls


def forbidden(request):
    raise PermissionDenied("internal reason")


def broken(request):
    raise RuntimeError("secret internals")


# The project's URLs, and two views that fail on purpose (only for the tests marked below).
urlpatterns = [
    path("test-only/forbidden/", forbidden),
    path("test-only/broken/", broken),
    *project_urls.urlpatterns,
]

with_failing_views = pytest.mark.urls(__name__)
production = override_settings(DEBUG=False)

HOME_LINK = f'href="{reverse("home")}"'
NOT_FOUND = "This page does not exist"
NO_ACCESS = "You don't have access to this page"
WENT_WRONG = "Something went wrong"


def assert_our_page(response, status, heading):
    assert response.status_code == status
    html = response.content.decode()
    assert heading in html
    assert HOME_LINK in html
    assert 'class="navbar-brand" href="/">Clinic billing</a>' in html  # the product's bar
    assert "Traceback" not in html and "Django" not in html
    return html


@production
@pytest.mark.django_db
def test_a_missing_address_shows_our_page_not_found(client):
    response = client.get("/billing/no-such-page/")

    html = assert_our_page(response, 404, NOT_FOUND)
    assert "Address: /billing/no-such-page/" in html


@production
def test_another_clinics_invoice_is_the_same_page_not_found_with_the_menu(
        client, outsider, make_invoice):
    invoice = make_invoice()
    client.force_login(outsider)

    response = client.get(reverse("desk:invoice_detail", args=[invoice.pk]))

    html = assert_our_page(response, 404, NOT_FOUND)
    assert "No such invoice" not in html  # said the same way as an address that never existed
    assert "Financial Approval" in html  # the signed-in menu, to carry on from
    assert f'href="{reverse("desk:invoice_list")}"' in html


@production
@with_failing_views
def test_a_refused_page_shows_our_no_access_page(client, clerk):
    client.force_login(clerk)

    response = client.get("/test-only/forbidden/")

    html = assert_our_page(response, 403, NO_ACCESS)
    assert "ask your billing administrator for access" in html
    assert "internal reason" not in html


@production
@with_failing_views
def test_a_bug_shows_our_plain_page(client, clerk):
    client.raise_request_exception = False
    client.force_login(clerk)

    response = client.get("/test-only/broken/")

    html = assert_our_page(response, 500, WENT_WRONG)
    assert "nothing was changed" in html
    assert "secret internals" not in html
    assert "RuntimeError" not in html


@pytest.mark.django_db
def test_the_500_page_renders_without_a_request_or_the_database(django_assert_num_queries):
    # what Django's server_error does: the template alone, no request, no context processors
    with django_assert_num_queries(0):
        html = loader.get_template("500.html").render()

    assert WENT_WRONG in html
    assert HOME_LINK in html
    assert "Financial Approval" not in html  # no menu: it would need the database


@production
def test_a_form_sent_without_its_csrf_token_gets_our_plain_page(clerk):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(clerk)

    response = browser.post(reverse("logout"))

    html = assert_our_page(response, 403, "The form could not be sent")
    assert "reload the page" in html
    assert "CSRF" not in html


@production
@pytest.mark.django_db
def test_error_pages_need_no_inline_script_or_style(client):
    # the Content-Security-Policy allows this application's files only
    html = client.get("/no-such-page/").content.decode()
    html += loader.get_template("500.html").render()

    assert "<script>" not in html and "style=" not in html and "<style" not in html
