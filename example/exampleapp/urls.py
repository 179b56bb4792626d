from django.urls import path

from guestbook import views

urlpatterns = [
    path("", views.index, name="index"),
    path("health/", views.health, name="health"),
    path("notes/", views.add_note, name="add-note"),
    path("tasks/note/", views.start_note_task, name="start-note-task"),
    path("cache/", views.cached, name="cached"),
    path("client/", views.client, name="client"),
    path("environment/<str:name>/", views.environment_digest, name="environment-digest"),
]
