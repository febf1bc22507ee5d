//! Serialisation of an [`IrModel`] to IR v11 XML with quick-xml.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::ir::{IrModel, Port};

/// The IR's XML document.
pub fn to_xml(model: &IrModel) -> Result<Vec<u8>, std::io::Error> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    let mut net = BytesStart::new("net");
    net.push_attribute(("name", model.name.as_str()));
    net.push_attribute(("version", "11"));
    w.write_event(Event::Start(net))?;
    w.write_event(Event::Start(BytesStart::new("layers")))?;
    for layer in &model.layers {
        let mut start = BytesStart::new("layer");
        let id = layer.id.to_string();
        start.push_attribute(("id", id.as_str()));
        start.push_attribute(("name", layer.name.as_str()));
        start.push_attribute(("type", layer.kind.as_str()));
        start.push_attribute(("version", layer.version.as_str()));
        w.write_event(Event::Start(start))?;
        if !layer.attrs.is_empty() {
            let mut data = BytesStart::new("data");
            for (k, v) in &layer.attrs {
                data.push_attribute((k.as_str(), v.as_str()));
            }
            w.write_event(Event::Empty(data))?;
        }
        if !layer.inputs.is_empty() {
            w.write_event(Event::Start(BytesStart::new("input")))?;
            for (i, port) in layer.inputs.iter().enumerate() {
                write_port(&mut w, i, port, None)?;
            }
            w.write_event(Event::End(BytesEnd::new("input")))?;
        }
        if !layer.outputs.is_empty() {
            w.write_event(Event::Start(BytesStart::new("output")))?;
            for (i, port) in layer.outputs.iter().enumerate() {
                let names = if i == 0 {
                    layer.output_names.as_deref()
                } else {
                    None
                };
                write_port(&mut w, layer.inputs.len() + i, port, names)?;
            }
            w.write_event(Event::End(BytesEnd::new("output")))?;
        }
        w.write_event(Event::End(BytesEnd::new("layer")))?;
    }
    w.write_event(Event::End(BytesEnd::new("layers")))?;
    w.write_event(Event::Start(BytesStart::new("edges")))?;
    for e in &model.edges {
        let mut edge = BytesStart::new("edge");
        let v = [
            e.from_layer.to_string(),
            e.from_port.to_string(),
            e.to_layer.to_string(),
            e.to_port.to_string(),
        ];
        edge.push_attribute(("from-layer", v[0].as_str()));
        edge.push_attribute(("from-port", v[1].as_str()));
        edge.push_attribute(("to-layer", v[2].as_str()));
        edge.push_attribute(("to-port", v[3].as_str()));
        w.write_event(Event::Empty(edge))?;
    }
    w.write_event(Event::End(BytesEnd::new("edges")))?;
    w.write_event(Event::Empty(BytesStart::new("rt_info")))?;
    w.write_event(Event::End(BytesEnd::new("net")))?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn write_port(
    w: &mut Writer<Vec<u8>>,
    id: usize,
    port: &Port,
    names: Option<&str>,
) -> Result<(), std::io::Error> {
    let mut start = BytesStart::new("port");
    let id = id.to_string();
    start.push_attribute(("id", id.as_str()));
    start.push_attribute(("precision", port.element.precision()));
    if let Some(names) = names {
        start.push_attribute(("names", names));
    }
    if port.dims.is_empty() {
        w.write_event(Event::Empty(start))?;
        return Ok(());
    }
    w.write_event(Event::Start(start))?;
    for d in &port.dims {
        w.write_event(Event::Start(BytesStart::new("dim")))?;
        w.write_event(Event::Text(BytesText::new(&d.to_string())))?;
        w.write_event(Event::End(BytesEnd::new("dim")))?;
    }
    w.write_event(Event::End(BytesEnd::new("port")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::ElementType;

    #[test]
    fn writes_layers_ports_and_edges_with_escaping() {
        let mut m = IrModel::new("m<&>");
        let c = m.const_f32("w\"1", &[2], &[1.0, 2.0]);
        m.add_layer("Result", "opset1", "out", vec![], &[c], vec![]);
        let xml = String::from_utf8(to_xml(&m).unwrap()).unwrap();
        assert!(
            xml.contains(r#"<net name="m&lt;&amp;&gt;" version="11">"#),
            "{xml}"
        );
        assert!(xml.contains(r#"name="w&quot;1" type="Const""#), "{xml}");
        assert!(xml.contains(r#"<edge from-layer="0" from-port="0" to-layer="1" to-port="0"/>"#));
        assert!(xml.contains("<dim>2</dim>"));
        assert_eq!(m.bin.len(), 8);
        assert_eq!(m.port(c).element, ElementType::F32);
    }
}
