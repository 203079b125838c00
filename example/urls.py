from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.launch, name="launch"),
    path("admin/", admin.site.urls),
    path("tasklog/", include("tasklog.urls")),
]
