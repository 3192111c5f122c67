"""Transition buttons in the admin that go through the services (lock, rules, audit) instead of
calling the bare django-fsm transition and saving."""

from django.contrib import messages
from django_fsm.admin import FSMAdminMixin

from .exceptions import BusinessRuleError


class ServiceTransitionAdminMixin(FSMAdminMixin):
    # transition name -> callable(obj, user) that performs it through a service
    fsm_services: dict = {}

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None):
        service = self.fsm_services.get(transition_name)
        if service is None:
            self.message_user(request, f"“{transition_name}” cannot be done from here.",
                              level=messages.ERROR)
            return False
        try:
            service(obj, request.user, **(kwargs or {}))
        except BusinessRuleError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return False
        self.message_user(request, f"{obj._meta.verbose_name.capitalize()} updated: "
                                   f"{transition_name.replace('_', ' ')}.", level=messages.SUCCESS)
        return True
