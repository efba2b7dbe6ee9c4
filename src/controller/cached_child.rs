//! An owned child as the caches keep it: its metadata typed (without `managedFields`) and every
//! other top-level field (`spec`, `status`, `data`...) as one compact JSON text.
//!
//! Why not the k8s-openapi type: it is sized for every field Kubernetes has (a `Container` is
//! 2 KiB inline, a `Volume` 3 KiB), so a cached typed Deployment costs about 28 KiB where its
//! JSON is 3 KiB, and a thousand services pay it three thousand times. The reconciler reads a
//! child's body only when it reconciles the owner, and decodes it then ([`CachedChild::decode`],
//! [`CachedChild::to_value`]). A body the typed struct would refuse no longer breaks the whole
//! watch either: it fails the one reconcile that reads it, with the object's name.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A child of kind `K` as cached; `K` gives the API identity and the decoded type.
pub struct CachedChild<K> {
    pub metadata: ObjectMeta,
    /// The top-level fields other than `apiVersion`, `kind` and `metadata`, as a JSON object.
    body: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for CachedChild<K> {
    fn clone(&self) -> Self {
        CachedChild {
            metadata: self.metadata.clone(),
            body: self.body.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> fmt::Debug for CachedChild<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedChild")
            .field("metadata", &self.metadata)
            .field("body", &self.body)
            .finish()
    }
}

impl<K: Resource<DynamicType = ()>> CachedChild<K> {
    /// The object as the API server sent it, minus `managedFields`.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        let mut object: Map<String, Value> = serde_json::from_str(&self.body)?;
        object.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
        object.insert("kind".into(), K::kind(&()).into_owned().into());
        object.insert("metadata".into(), serde_json::to_value(&self.metadata)?);
        Ok(Value::Object(object))
    }
}

impl<K: Resource<DynamicType = ()> + DeserializeOwned> CachedChild<K> {
    /// The object as its k8s-openapi type.
    pub fn decode(&self) -> Result<K, serde_json::Error> {
        serde_json::from_value(self.to_value()?)
    }
}

impl<K: Resource<DynamicType = ()>> Resource for CachedChild<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl<'de, K> Deserialize<'de> for CachedChild<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ChildVisitor(PhantomData))
    }
}

struct ChildVisitor<K>(PhantomData<fn() -> K>);

impl<'de, K> Visitor<'de> for ChildVisitor<K> {
    type Value = CachedChild<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut metadata = None;
        let mut body = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metadata" => metadata = Some(map.next_value::<MetadataWithoutManagedFields>()?.0),
                "apiVersion" | "kind" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    body.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        let body = serde_json::to_string(&body).map_err(de::Error::custom)?;
        Ok(CachedChild {
            metadata: metadata.unwrap_or_default(),
            body: body.into_boxed_str(),
            kind: PhantomData,
        })
    }
}

/// `ObjectMeta` read without ever building its `managedFields` (the largest part of a
/// listed object, and nothing the operator reads).
struct MetadataWithoutManagedFields(ObjectMeta);

impl<'de> Deserialize<'de> for MetadataWithoutManagedFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MetadataVisitor)
    }
}

struct MetadataVisitor;

impl<'de> Visitor<'de> for MetadataVisitor {
    type Value = MetadataWithoutManagedFields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("object metadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "managedFields" {
                map.next_value::<IgnoredAny>()?;
            } else {
                fields.insert(key, map.next_value::<Value>()?);
            }
        }
        serde_json::from_value(Value::Object(fields))
            .map(MetadataWithoutManagedFields)
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
#[path = "cached_child_tests.rs"]
mod tests;
