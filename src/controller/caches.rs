//! The watch caches every replica keeps (the webhook reads them too), and the reconcile
//! triggers they produce for the leader.
//!
//! ```text
//! [MmfPluginRevision] --owner, index--+
//!      | owner                         v
//! [MmfPlugin] --index--> [MmfService] <-- owns -- [Deployment, ConfigMap, Service]
//!      ^                      ^
//!      +---- [Namespace environment label] ----+
//! ```
//! Built-in kinds: only what the operator owns (by label, `owned_children!` below), each a
//! [`CachedChild`]; namespaces as metadata only; no `managedFields` is cached.
//!
//! Why the reflectors are driven here rather than by `kube::runtime::Controller`: every replica
//! serves the admission webhook from these caches, but only the lease holder reconciles. The
//! stores therefore live for the whole process, while the controllers (fed by the trigger
//! channels below) start when the lease is won and stop when it is lost, over the same stores.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::metrics::gauge::Gauge;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::cached_child::CachedChild;
use super::index::PluginIndex;
use crate::api::{
    ENVIRONMENT_LABEL, MmfPlugin, MmfPluginRevision, MmfService, managed_by_selector,
};
use crate::cluster_view::{ClusterView, environment_of};
use crate::config::SharedConfig;

/// Senders into the running controllers; `None` while this replica is not the leader, so
/// triggers are dropped instead of piling up.
#[derive(Default)]
struct TriggerSenders {
    plugins: Option<mpsc::UnboundedSender<ObjectRef<MmfPlugin>>>,
    services: Option<mpsc::UnboundedSender<ObjectRef<MmfService>>>,
}

/// Reflector stores, the plugin index and the trigger plumbing.
pub struct Caches {
    pub plugins: Store<MmfPlugin>,
    /// The revisions the operator recorded (selected by its managed-by label).
    pub revisions: Store<MmfPluginRevision>,
    pub services: Store<MmfService>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// The owned children (ConfigMap, Deployment, Service), one table in `children.rs`.
    pub children: Children,
    index: Mutex<PluginIndex>,
    environments: Mutex<HashMap<String, Option<String>>>,
    senders: Mutex<TriggerSenders>,
    synced: AtomicBool,
    config: Arc<SharedConfig>,
    /// Triggers sent but not yet picked up by a controller (the queue depth metric).
    pub pending: Gauge,
    /// The watch tasks, stopped by [`Caches::stop`].
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// Receivers handed to the controllers when this replica leads.
pub struct TriggerReceivers {
    pub plugins: mpsc::UnboundedReceiver<ObjectRef<MmfPlugin>>,
    pub services: mpsc::UnboundedReceiver<ObjectRef<MmfService>>,
}

fn strip<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A reflected, backoff-protected watch, managedFields dropped.
fn reflected<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    watcher(api, config)
        .default_backoff()
        .modify(strip)
        .reflect(writer)
}

impl Caches {
    /// Starts every watch in the background; [`Caches::wait_synced`] tells when they are full.
    pub fn start(client: Client, config: Arc<SharedConfig>, pending: Gauge) -> Arc<Caches> {
        let (plugins, plugin_writer) = reflector::store();
        let (revisions, revision_writer) = reflector::store();
        let (services, service_writer) = reflector::store();
        let (namespaces, namespace_writer) = reflector::store();
        let (children, child_writers) = Children::new();
        let caches = Arc::new(Caches {
            plugins,
            revisions,
            services,
            namespaces,
            children,
            index: Mutex::new(PluginIndex::default()),
            environments: Mutex::new(HashMap::new()),
            senders: Mutex::new(TriggerSenders::default()),
            synced: AtomicBool::new(false),
            config,
            pending,
            tasks: Mutex::new(Vec::new()),
        });
        let paged = watcher::Config::default().page_size(500);
        let owned = paged.clone().labels(&managed_by_selector());

        let plugin_events = reflected(
            Api::<MmfPlugin>::all(client.clone()),
            paged.clone(),
            plugin_writer,
        );
        spawn_driver(
            "mmfplugins",
            plugin_events,
            Arc::clone(&caches),
            Caches::on_plugin,
        );
        let revision_events = reflected(
            Api::<MmfPluginRevision>::all(client.clone()),
            owned.clone(),
            revision_writer,
        );
        spawn_driver(
            "mmfpluginrevisions",
            revision_events,
            Arc::clone(&caches),
            Caches::on_revision,
        );
        let service_events = reflected(
            Api::<MmfService>::all(client.clone()),
            paged.clone(),
            service_writer,
        );
        spawn_driver(
            "mmfservices",
            service_events,
            Arc::clone(&caches),
            Caches::on_service,
        );
        let namespace_events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            paged,
        )
        .default_backoff()
        .modify(strip)
        .reflect(namespace_writer);
        spawn_driver(
            "namespaces",
            namespace_events,
            Arc::clone(&caches),
            Caches::on_namespace,
        );
        child_writers.watch(&client, &owned, &caches);
        caches
    }

    /// Waits for every initial list.
    pub async fn wait_synced(&self) {
        let results = futures::join!(
            self.plugins.wait_until_ready(),
            self.revisions.wait_until_ready(),
            self.services.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.children.wait_until_ready(),
        );
        let ok = [
            results.0.is_ok(),
            results.1.is_ok(),
            results.2.is_ok(),
            results.3.is_ok(),
            results.4,
        ];
        self.synced.store(ok.iter().all(|ok| *ok), Ordering::SeqCst);
    }

    /// Connects the controllers: from now on triggers are delivered, starting with every
    /// object currently cached.
    pub fn connect(&self) -> TriggerReceivers {
        let (plugin_tx, plugins) = mpsc::unbounded_channel();
        let (service_tx, services) = mpsc::unbounded_channel();
        if let Ok(mut senders) = self.senders.lock() {
            *senders = TriggerSenders {
                plugins: Some(plugin_tx),
                services: Some(service_tx),
            };
        }
        self.trigger_all();
        TriggerReceivers { plugins, services }
    }

    /// Stops every watch (the operator is shutting down).
    pub fn stop(&self) {
        self.disconnect();
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// Stops delivering triggers (leadership lost or shutting down).
    pub fn disconnect(&self) {
        if let Ok(mut senders) = self.senders.lock() {
            *senders = TriggerSenders::default();
        }
    }

    /// Re-reconciles everything (after a config reload).
    pub fn trigger_all(&self) {
        for plugin in self.plugins.state() {
            self.trigger_plugin(ObjectRef::from_obj(plugin.as_ref()));
        }
        for service in self.services.state() {
            self.trigger_service(ObjectRef::from_obj(service.as_ref()));
        }
    }

    fn trigger_plugin(&self, object: ObjectRef<MmfPlugin>) {
        let sent = self
            .senders
            .lock()
            .ok()
            .and_then(|s| s.plugins.as_ref().map(|tx| tx.send(object).is_ok()));
        if sent == Some(true) {
            self.pending.inc();
        }
    }

    fn trigger_service(&self, object: ObjectRef<MmfService>) {
        let sent = self
            .senders
            .lock()
            .ok()
            .and_then(|s| s.services.as_ref().map(|tx| tx.send(object).is_ok()));
        if sent == Some(true) {
            self.pending.inc();
        }
    }

    fn trigger_services_in(&self, namespace: &str) {
        for service in self.services.state() {
            if service.namespace().as_deref() == Some(namespace) {
                self.trigger_service(ObjectRef::from_obj(service.as_ref()));
            }
        }
    }

    fn on_plugin(&self, event: &watcher::Event<MmfPlugin>) {
        match event {
            watcher::Event::Apply(plugin)
            | watcher::Event::Delete(plugin)
            | watcher::Event::InitApply(plugin) => {
                self.trigger_plugin(ObjectRef::from_obj(plugin));
                if let Some(namespace) = plugin.namespace() {
                    self.trigger_users_of(&namespace, &plugin.name_any());
                }
            }
            // A re-list may have hidden deletions: every service re-resolves (no-ops write nothing).
            watcher::Event::InitDone => {
                for service in self.services.state() {
                    self.trigger_service(ObjectRef::from_obj(service.as_ref()));
                }
            }
            watcher::Event::Init => {}
        }
    }

    /// Re-reconciles the services that load `plugin` (by name or as an environment default).
    fn trigger_users_of(&self, namespace: &str, plugin: &str) {
        if self.is_default_plugin(namespace, plugin) {
            self.trigger_services_in(namespace);
            return;
        }
        let users = self
            .index
            .lock()
            .map(|i| i.users_of(namespace, plugin))
            .unwrap_or_default();
        for service in users {
            self.trigger_service(ObjectRef::new(&service).within(namespace));
        }
    }

    /// A revision changed: its plugin re-checks its history, its plugin's services re-solve.
    fn on_revision(&self, event: &watcher::Event<MmfPluginRevision>) {
        let (watcher::Event::Apply(revision)
        | watcher::Event::Delete(revision)
        | watcher::Event::InitApply(revision)) = event
        else {
            return;
        };
        let Some(namespace) = revision.namespace() else {
            return;
        };
        self.trigger_plugin(ObjectRef::new(&revision.spec.plugin).within(&namespace));
        self.trigger_users_of(&namespace, &revision.spec.plugin);
    }

    /// Every revision of `plugin` in `namespace`.
    pub fn revisions_of(&self, namespace: &str, plugin: &str) -> Vec<Arc<MmfPluginRevision>> {
        self.revisions
            .state()
            .into_iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace) && r.spec.plugin == plugin)
            .collect()
    }

    /// Names of the revisions some MmfService of `namespace` reports loading.
    pub fn revisions_in_use(&self, namespace: &str) -> std::collections::BTreeSet<String> {
        self.services
            .state()
            .iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .filter_map(|s| s.status.as_ref())
            .flat_map(|status| status.plugins.iter().filter_map(|p| p.revision.clone()))
            .collect()
    }

    /// True when the environment of `namespace` enables `plugin` by default.
    fn is_default_plugin(&self, namespace: &str, plugin: &str) -> bool {
        let config = self.config.current();
        let (_, policy) =
            environment_of(self, &config, self.config.default_environment(), namespace);
        policy.is_ok_and(|policy| policy.default_plugins.iter().any(|p| p.name == plugin))
    }

    fn on_service(&self, event: &watcher::Event<MmfService>) {
        match event {
            watcher::Event::Apply(service) | watcher::Event::InitApply(service) => {
                if let Ok(mut index) = self.index.lock() {
                    index.apply(service);
                }
                self.trigger_service(ObjectRef::from_obj(service));
            }
            watcher::Event::Delete(service) => {
                if let Ok(mut index) = self.index.lock() {
                    index.delete(service);
                }
            }
            watcher::Event::InitDone => {
                let services = self.services.state();
                if let Ok(mut index) = self.index.lock() {
                    index.reset(services.iter().map(AsRef::as_ref));
                }
            }
            watcher::Event::Init => {}
        }
    }

    fn on_namespace(&self, event: &watcher::Event<PartialObjectMeta<Namespace>>) {
        let (watcher::Event::Apply(namespace) | watcher::Event::InitApply(namespace)) = event
        else {
            return;
        };
        let name = namespace.name_any();
        let environment = namespace.labels().get(ENVIRONMENT_LABEL).cloned();
        let changed = self
            .environments
            .lock()
            .map(|mut seen| seen.insert(name.clone(), environment.clone()) != Some(environment))
            .unwrap_or(true);
        if changed {
            for plugin in self.plugins.state() {
                if plugin.namespace().as_deref() == Some(name.as_str()) {
                    self.trigger_plugin(ObjectRef::from_obj(plugin.as_ref()));
                }
            }
            self.trigger_services_in(&name);
        }
    }

    /// A child's change reaches its owner. Between a watch's Init and InitDone (a relist, after
    /// a 410 Gone) the cache still holds the old objects: a child listed with another
    /// resourceVersion changed while the watch was down, and one not listed again was deleted.
    fn on_child<K>(&self, relist: &mut Relist<K>, event: &watcher::Event<K>)
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        match event {
            watcher::Event::Apply(child) | watcher::Event::Delete(child) => {
                if let Some(owner) = owner_of(child) {
                    self.trigger_service(owner);
                }
            }
            watcher::Event::Init => {
                relist.unseen = relist
                    .store
                    .state()
                    .iter()
                    .filter_map(|child| {
                        Some((
                            ObjectRef::from_obj(child.as_ref()),
                            owner_of(child.as_ref())?,
                        ))
                    })
                    .collect();
            }
            watcher::Event::InitApply(child) => {
                let key = ObjectRef::from_obj(child);
                relist.unseen.remove(&key);
                let cached = relist.store.get(&key);
                let changed = cached.as_ref().is_some_and(|cached| {
                    cached.meta().resource_version != child.meta().resource_version
                });
                // A child new to the cache needs no trigger at the first list (its owner's own
                // initial event reconciles it); after that it was created while the watch was down.
                if (changed || (cached.is_none() && relist.listed_once))
                    && let Some(owner) = owner_of(child)
                {
                    self.trigger_service(owner);
                }
            }
            watcher::Event::InitDone => {
                relist.listed_once = true;
                for (_, owner) in relist.unseen.drain() {
                    self.trigger_service(owner);
                }
            }
        }
    }
}

/// What a child watch's relist compares against (see [`Caches::on_child`]).
struct Relist<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    /// Children cached before the relist and not listed again yet, with their owners.
    unseen: HashMap<ObjectRef<K>, ObjectRef<MmfService>>,
    listed_once: bool,
}

impl<K> Relist<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    fn new(store: Store<K>) -> Self {
        Self {
            store,
            unseen: HashMap::new(),
            listed_once: false,
        }
    }
}

/// The MmfService that controls `child`, if any.
fn owner_of<K: Resource>(child: &K) -> Option<ObjectRef<MmfService>> {
    let owner = child
        .meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "MmfService")?;
    Some(ObjectRef::new(&owner.name).within(child.meta().namespace.as_deref()?))
}

fn spawn_driver<K, S>(
    resource: &'static str,
    events: S,
    caches: Arc<Caches>,
    mut handle: impl FnMut(&Caches, &watcher::Event<K>) + Send + 'static,
) where
    K: Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let owner = Arc::clone(&caches);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => handle(&caches, &event),
                // The backoff retries; a failing watch is logged, never fatal.
                Err(error) => tracing::warn!(resource, %error, "watch failed, retrying"),
            }
        }
    });
    if let Ok(mut tasks) = owner.tasks.lock() {
        tasks.push(task.abort_handle());
    }
}

impl ClusterView for Caches {
    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
    }

    fn plugins_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>> {
        self.plugins
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(namespace))
            .collect()
    }

    fn candidates_in(&self, namespace: &str) -> Vec<Arc<MmfPlugin>> {
        // Revisions of a deleted plugin wait for garbage collection; they are not loaded.
        let plugins = self.plugins_in(namespace);
        let mut candidates: Vec<Arc<MmfPlugin>> = self
            .revisions
            .state()
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(namespace))
            .filter(|r| {
                plugins
                    .iter()
                    .any(|p| p.metadata.name.as_deref() == Some(r.spec.plugin.as_str()))
            })
            .map(|r| Arc::new(r.to_plugin()))
            .collect();
        candidates.extend(plugins);
        candidates
    }

    fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

// The built-in kinds an MmfService owns, in one table: each cached on every replica (the
// reconciler compares with the cache, not the API server), selected by the managed-by label; an
// event on one re-triggers its owner. A new kind: one line below, render it in `core::render`,
// apply it in `apply.rs`, grant the chart's RBAC.
macro_rules! owned_children {
    ($($(#[$doc:meta])* $field:ident: $kind:ty = $resource:literal,)*) => {
        /// The caches of the owned children, one store per kind.
        pub struct Children {
            $($(#[$doc])* pub $field: Store<$kind>,)*
        }

        /// The writing halves of [`Children`], consumed by [`ChildWriters::watch`].
        pub struct ChildWriters {
            $($field: reflector::store::Writer<$kind>,)*
        }

        impl Children {
            /// Empty stores and their writers.
            pub fn new() -> (Children, ChildWriters) {
                $(let $field = reflector::store();)*
                (
                    Children { $($field: $field.0,)* },
                    ChildWriters { $($field: $field.1,)* },
                )
            }

            /// Waits for every initial list; false if one of them can never complete.
            pub async fn wait_until_ready(&self) -> bool {
                let mut ready = true;
                $(ready &= self.$field.wait_until_ready().await.is_ok();)*
                ready
            }
        }

        impl ChildWriters {
            /// Starts one watch per kind with `owned` (the managed-by selector), each event
            /// re-triggering the owner through `caches`.
            pub fn watch(self, client: &Client, owned: &watcher::Config, caches: &Arc<Caches>) {
                $(spawn_driver(
                    $resource,
                    reflected(Api::<$kind>::all(client.clone()), owned.clone(), self.$field),
                    Arc::clone(caches),
                    {
                        let mut relist = Relist::new(caches.children.$field.clone());
                        move |caches: &Caches, event: &watcher::Event<$kind>| {
                            caches.on_child(&mut relist, event)
                        }
                    },
                );)*
            }
        }
    };
}

owned_children! {
    /// `<service>-mmf`, the framework and plugin configuration.
    config_maps: CachedChild<ConfigMap> = "configmaps",
    /// `<service>`, the pods.
    deployments: CachedChild<Deployment> = "deployments",
    /// `<service>`, the ClusterIP Service.
    kube_services: CachedChild<Service> = "services",
}
