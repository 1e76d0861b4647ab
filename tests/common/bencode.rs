//! A small bencode decoder for checking replies.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(map) => map.get(key.as_bytes()),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Some(Value::Int(i)) => *i,
            other => panic!("{key}: not an int: {other:?} in {self:?}"),
        }
    }

    pub fn bytes(&self, key: &str) -> &[u8] {
        match self.get(key) {
            Some(Value::Bytes(b)) => b,
            other => panic!("{key}: not bytes: {other:?}"),
        }
    }

    pub fn dict(&self) -> &BTreeMap<Vec<u8>, Value> {
        match self {
            Value::Dict(map) => map,
            other => panic!("not a dict: {other:?}"),
        }
    }
}

/// Decodes exactly one value filling `data`; also checks dict keys ascend.
pub fn decode(data: &[u8]) -> Option<Value> {
    let (value, used) = parse(data)?;
    (used == data.len()).then_some(value)
}

fn parse(data: &[u8]) -> Option<(Value, usize)> {
    match *data.first()? {
        b'i' => {
            let end = data.iter().position(|&b| b == b'e')?;
            Some((
                Value::Int(std::str::from_utf8(&data[1..end]).ok()?.parse().ok()?),
                end + 1,
            ))
        }
        b'l' => {
            let mut at = 1;
            let mut items = Vec::new();
            while *data.get(at)? != b'e' {
                let (item, used) = parse(&data[at..])?;
                items.push(item);
                at += used;
            }
            Some((Value::List(items), at + 1))
        }
        b'd' => {
            let mut at = 1;
            let mut map = BTreeMap::new();
            let mut last: Option<Vec<u8>> = None;
            while *data.get(at)? != b'e' {
                let (Value::Bytes(key), used) = parse(&data[at..])? else {
                    return None;
                };
                at += used;
                if last.as_ref().is_some_and(|l| *l >= key) {
                    return None;
                }
                last = Some(key.clone());
                let (value, used) = parse(&data[at..])?;
                at += used;
                map.insert(key, value);
            }
            Some((Value::Dict(map), at + 1))
        }
        b'0'..=b'9' => {
            let colon = data.iter().position(|&b| b == b':')?;
            let len: usize = std::str::from_utf8(&data[..colon]).ok()?.parse().ok()?;
            let bytes = data.get(colon + 1..colon + 1 + len)?.to_vec();
            Some((Value::Bytes(bytes), colon + 1 + len))
        }
        _ => None,
    }
}
