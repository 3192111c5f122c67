// The GraphiQL page: runs as the signed-in user (session cookie + CSRF token), with that user's
// clinics and permissions; integrations use OAuth2 tokens instead (docs/api.md).
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var fetcher = GraphiQL.createFetcher({
    url: root.dataset.url,
    headers: {"X-CSRFToken": root.dataset.csrfToken},
  });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {fetcher: fetcher, defaultEditorToolsVisibility: true}),
  );
})();
